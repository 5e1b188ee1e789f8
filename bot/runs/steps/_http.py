"""One HTTP request as a step makes it (the http kind, an app's maintenance endpoint), its failure as an effect.

Not responsible for which request (the kinds) nor for retries (the engine).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.executors.base import Effect, ExecutorError
from bot.runs.steps.base import StepDeps


async def request(deps: StepDeps, method: str, url: str, body: Any, headers: dict[str, str], expect: list[int],
                  timeout: float, *, secret: bool) -> str:
    # A webhook URL kept in the environment is a secret (its path is the key): only its host is shown.
    try:
        parts = urlsplit(url)
        shown = f"{parts.scheme}://{parts.hostname}/…" if secret else url
    except ValueError:
        shown = "the URL in the environment" if secret else url
    try:
        async with deps.http.request(method, url, json=body, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            text = (await response.text(errors="replace"))[:200]
            if response.status not in expect:
                # A 4xx is the endpoint refusing the request; anything else (a 5xx, an unexpected 2xx) may have acted.
                refused = 400 <= response.status < 500
                raise ExecutorError(f"{method} {shown} answered {response.status}: {text}",
                                    state="unchanged: the endpoint refused the request" if refused
                                    else "unknown: the endpoint answered, and may or may not have acted",
                                    effect=Effect.UNTOUCHED if refused else Effect.UNKNOWN)
            return f"{method} {shown}: {response.status}"
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        # aiohttp quotes the URL in some errors (a malformed one, a redirect): a secret one is never shown.
        why = type(exc).__name__ if secret else f"{type(exc).__name__} {exc}"
        # No connection (or no valid URL): the request never left; otherwise it went, and no answer came back.
        unsent = isinstance(exc, (aiohttp.ClientConnectorError, ValueError))
        raise ExecutorError(f"{method} {shown} failed: {why}"[:300],
                            state="unchanged: the request was not sent" if unsent else "unknown: no answer came back",
                            effect=Effect.UNTOUCHED if unsent else Effect.UNKNOWN) from exc
