"""HTTP check: expected status, optional body substring, latency thresholds.

The runbooks' `curl -f http://…/health` lines, without a shell.
"""

from __future__ import annotations

import time
from typing import Literal

import aiohttp
from pydantic import Field, HttpUrl, field_validator

from bot.checks.base import ENV_NAME, CheckDeps, CheckSpec, Probe, Status, Thresholds

BODY_LIMIT = 1 << 20  # read at most 1 MiB looking for `body_contains`


class HttpCheck(CheckSpec):
    type: Literal["http"]
    url: HttpUrl
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expect_status: list[int] = Field(default=[200], min_length=1)
    body_contains: str | None = Field(default=None, min_length=1)
    latency_ms: Thresholds | None = None
    headers_env: dict[str, str] = Field(
        default_factory=dict, description="header name -> environment variable holding its value"
    )
    verify_tls: bool = True

    @field_validator("expect_status", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, int) else value

    @field_validator("expect_status")
    @classmethod
    def _valid_codes(cls, value: list[int]) -> list[int]:
        bad = [code for code in value if not 100 <= code <= 599]
        if bad:
            raise ValueError(f"HTTP status codes are 100-599, got {bad[0]}")
        return value

    @field_validator("url")
    @classmethod
    def _no_inline_password(cls, value: HttpUrl) -> HttpUrl:
        if value.password:
            raise ValueError("must not contain a password; send credentials with headers_env")
        return value

    @field_validator("headers_env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        import re

        for header, env in value.items():
            if not re.match(ENV_NAME, env):
                raise ValueError(f"{header}: {env!r} is not an environment variable name")
        return value

    def default_label(self) -> str:
        return f"http {self.url.path or '/'}"

    def secret_envs(self) -> list[str]:
        return list(self.headers_env.values())

    async def probe(self, deps: CheckDeps) -> Probe:
        headers = {name: deps.secret(env) for name, env in self.headers_env.items()}
        started = time.perf_counter()
        try:
            async with deps.http.request(
                self.method,
                str(self.url),
                headers=headers,
                ssl=None if self.verify_tls else False,
                allow_redirects=False,
            ) as response:
                body = await _read_up_to(response, BODY_LIMIT) if self.body_contains else b""
                elapsed_ms = (time.perf_counter() - started) * 1000
                status_code = response.status
        except aiohttp.ClientConnectorError as exc:
            return Probe(Status.CRITICAL, f"cannot connect to {self.url.host}:{self.url.port} ({exc.strerror or exc})")
        except aiohttp.ClientError as exc:
            return Probe(Status.CRITICAL, f"request failed: {type(exc).__name__}: {exc}")

        if status_code not in self.expect_status:
            expected = " or ".join(str(code) for code in self.expect_status)
            return Probe(Status.CRITICAL, f"HTTP {status_code} (expected {expected})")
        if self.body_contains and self.body_contains.encode() not in body:
            return Probe(Status.CRITICAL, f"HTTP {status_code} but the body lacks {self.body_contains!r}")
        if self.latency_ms is not None:
            graded = self.latency_ms.grade(elapsed_ms)
            if graded is not Status.OK:
                limit = self.latency_ms.critical if graded is Status.CRITICAL else self.latency_ms.warning
                return Probe(graded, f"HTTP {status_code}, slow: {elapsed_ms:.0f} ms (limit {limit:g} ms)")
        return Probe(Status.OK, f"HTTP {status_code}")


async def _read_up_to(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body up to `limit` bytes, however many chunks it arrives in (read(n) returns what has arrived)."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body[:limit])
