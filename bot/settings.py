"""Settings read from the environment (pydantic-settings), and the one-line errors for bad ones.

Tokens are SecretStr: they never print, log or appear in an error message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///data/opsbot.db"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"

_HINTS = {
    "SLACK_BOT_TOKEN": "the Bot User OAuth Token, xoxb-… (Slack app → OAuth & Permissions)",
    "SLACK_SIGNING_SECRET": "Slack app → Basic Information → Signing Secret",
    "SLACK_APP_TOKEN": "an app-level token xapp-… with connections:write, for Socket Mode",
    "DATABASE_URL": f"sqlite:///path/to/file.db or postgresql://user@host:5432/db (default {DEFAULT_DATABASE_URL})",
    "REDIS_URL": "redis://host:6379/0",
    "PORT": "a TCP port, 1-65535",
    "LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR",
    "SLACK_API_URL": "the Web API base URL, e.g. https://slack.com/api/",
}


class StoreSettings(BaseSettings):
    """What `opsbot migrate` needs: only the database."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)
    database_url: str = DEFAULT_DATABASE_URL

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if url.startswith("sqlite:///") or url.startswith(("postgresql://", "postgres://")):
            return url
        raise ValueError("must start with sqlite:/// or postgresql://")

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))

    @property
    def sqlite_path(self) -> Path:
        return Path(self.database_url.removeprefix("sqlite:///"))


class Settings(StoreSettings):
    slack_bot_token: SecretStr
    slack_signing_secret: SecretStr
    slack_app_token: SecretStr | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    redis_url: SecretStr | None = None  # a Redis URL may carry a password
    redis_prefix: str = Field(default="opsbot:", min_length=1)
    opsbot_config: Path = Path("opsbot.yml")
    host: str = "0.0.0.0"
    port: int = Field(default=3000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must start with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must start with xapp-")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None


def load_settings(kind: type[StoreSettings] = Settings, **overrides: object) -> StoreSettings:
    """Build settings from the environment; a bad or missing one raises ConfigError naming it, one per line."""
    try:
        return kind(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "setting"
            hint = _HINTS.get(name, "")
            if error["type"] == "missing":
                lines.append(f"{name} is not set" + (f": {hint}" if hint else ""))
            else:
                # Never echo the input: it may be a token.
                reason = error["ctx"]["error"] if error["type"] == "value_error" else error["msg"][:1].lower() + error["msg"][1:]
                lines.append(f"{name} {reason}" + (f"; expected {hint}" if hint else ""))
        raise ConfigError("\n".join(lines)) from None
