"""Fetching a URL for a check: the shared session, header secrets read from the environment, no redirects, and a
bounded body. What the answer means is each HTTP-speaking kind's business (http, http-json, prometheus)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import aiohttp
from pydantic import BaseModel, Field, HttpUrl, field_validator

from bot.checks.base import CheckDeps
from bot.env_names import ENV_NAME

BODY_LIMIT = 1 << 20  # read at most 1 MiB of a body: a health endpoint that sends more is not one


class HttpSource(BaseModel):
    """Mixin for checks that request a URL: the URL (never with a password) and the headers whose values are
    secrets, named by the environment variables that hold them."""

    url: HttpUrl
    headers_env: dict[str, str] = Field(
        default_factory=dict, description="header name -> environment variable holding its value"
    )
    verify_tls: bool = True

    @field_validator("url")
    @classmethod
    def _no_inline_password(cls, value: HttpUrl) -> HttpUrl:
        if value.password:
            raise ValueError("must not contain a password; send credentials with headers_env")
        return value

    @field_validator("headers_env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for header, env in value.items():
            if not re.match(ENV_NAME, env):
                raise ValueError(f"{header}: {env!r} is not an environment variable name")
        return value

    def secret_envs(self) -> list[str]:
        return list(self.headers_env.values())

    def host_port(self) -> str:
        return f"{self.url.host}:{self.url.port}"


class ExpectStatus(BaseModel):
    """Mixin: the HTTP status codes that count as an answer (`200` or `[200, 204]`)."""

    expect_status: list[int] = Field(default=[200], min_length=1)

    @field_validator("expect_status", mode="before", json_schema_input_type=int | list[int])
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

    def expected(self) -> str:
        return " or ".join(str(code) for code in self.expect_status)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    truncated: bool  # the body went on past the limit; `body` holds its first `limit` bytes
    elapsed_ms: float


class Unreachable(Exception):
    """The request got no HTTP answer; `reason` says why in words fit for a check's result."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def fetch(
    deps: CheckDeps,
    source: HttpSource,
    *,
    method: str = "GET",
    url: str | None = None,
    params: dict[str, str] | None = None,
    read_body: bool = True,
    limit: int = BODY_LIMIT,
) -> Answer:
    """Request `url` (default: the source's own) with the source's headers; raises Unreachable, or MissingSecret
    when a header's variable is not set (the runner reports that as "cannot run")."""
    headers = {name: deps.secret(env) for name, env in source.headers_env.items()}
    started = time.perf_counter()
    try:
        async with deps.http.request(
            method,
            url or str(source.url),
            params=params,
            headers=headers,
            ssl=source.verify_tls,  # True: the default context's checks; False: none
            # A redirect usually means a login page or a moved endpoint: report it rather than judge the page.
            allow_redirects=False,
        ) as response:
            body, truncated = await read_up_to(response, limit) if read_body else (b"", False)
            return Answer(response.status, body, truncated, (time.perf_counter() - started) * 1000)
    except aiohttp.ClientConnectorError as exc:
        raise Unreachable(f"cannot connect to {source.host_port()} ({exc.strerror or exc})") from None
    except aiohttp.ClientError as exc:
        raise Unreachable(f"request failed: {type(exc).__name__}: {exc}") from None


async def read_up_to(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """The body up to `limit` bytes, however many chunks it arrives in (read(n) returns what has arrived), and
    whether there was more."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            break
    return bytes(body[:limit]), len(body) > limit
