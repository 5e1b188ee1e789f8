"""Connection strings for checks: inline without a password, or read from a named environment variable."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, model_validator

from bot.checks.base import CheckDeps
from bot.env_names import ENV_NAME


class DsnSource(BaseModel):
    """Mixin for checks that connect with a URL: exactly one of `<field>` and `<field>_env`."""

    _url_field = "dsn"

    @model_validator(mode="after")
    def _exactly_one(self) -> DsnSource:
        field = self._url_field
        inline, env = getattr(self, field), getattr(self, f"{field}_env")
        if (inline is None) == (env is None):
            raise ValueError(f"give exactly one of `{field}` and `{field}_env`")
        if inline is not None and urlsplit(inline).password:
            raise ValueError(f"`{field}` must not contain a password; put the URL in an environment variable and name it in "
                             f"`{field}_env`")
        if env is not None and not re.match(ENV_NAME, env):
            raise ValueError(f"`{field}_env`: {env!r} is not an environment variable name")
        return self

    def connection_url(self, deps: CheckDeps) -> str:
        field = self._url_field
        env = getattr(self, f"{field}_env")
        return deps.secret(env) if env else getattr(self, field)

    def url_envs(self) -> list[str]:
        env = getattr(self, f"{self._url_field}_env")
        return [env] if env else []

    def where(self) -> str:
        """A safe name for messages: the env var, or the inline URL's host (never a password)."""
        env = getattr(self, f"{self._url_field}_env")
        if env:
            return f"${env}"
        parts = urlsplit(getattr(self, self._url_field))
        return f"{parts.hostname or 'localhost'}:{parts.port}" if parts.port else (parts.hostname or "localhost")


def url_field(description: str) -> Any:  # Any, like pydantic's Field: it stands in for a `str | None` default
    return Field(default=None, min_length=1, description=description)
