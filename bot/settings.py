"""Settings read from the environment (each field from the variable of its name, in any case), and the one-line
errors for bad ones. Not responsible for the catalog (bot/catalog.py).

Tokens are SecretStr: they never print, log or appear in an error message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator

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
    "LOG_FORMAT": "text (the default) or json (one JSON object per line)",
    "SLACK_API_URL": "the Web API base URL, e.g. https://slack.com/api/",
    "LEASE_SECONDS": "seconds, more than 0 (default 20)",
    "HEARTBEAT_SECONDS": "seconds, more than 0 and at most a third of LEASE_SECONDS (default 5)",
    "CHORE_SECONDS": "seconds, more than 0 (default 10)",
    "TICK_SECONDS": "seconds, more than 0 (default 5)",
    "SOCKET_DOWN_SECONDS": "seconds, more than 0 (default 30)",
    "OPSBOT_METRICS_TOKEN": "a random string of 16 or more characters, sent by Prometheus as a bearer token",
    "OPSBOT_ALERTS_TOKEN": "a random string of 16 or more characters, sent by Alertmanager or Grafana as a bearer token",
}


class StoreSettings(BaseModel):
    """What `opsbot migrate` needs: only the database."""

    # Defaults are checked like values read; what the environment holds beyond the fields is not ours.
    model_config = ConfigDict(extra="ignore", validate_default=True)
    database_url: str = DEFAULT_DATABASE_URL

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, given: Any) -> Any:
        # A field is read from the environment variable of its name in any case (DATABASE_URL → database_url); a
        # value passed in wins. Plain pydantic rather than pydantic-settings: its ~50 modules of sources (dotenv, cloud
        # secret stores, CLI parsing) cost every replica about 1 MB for what these four lines do.
        if not isinstance(given, dict):
            return given
        found = {name.lower(): value for name, value in os.environ.items() if name.lower() in cls.model_fields}
        return {**found, **given}

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if url.startswith(("sqlite:///", "postgresql://", "postgres://")):
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
    # When set, GET /metrics answers only `Authorization: Bearer <token>` (401 otherwise); unset, it is open, for a
    # scrape from inside the cluster network.
    opsbot_metrics_token: SecretStr | None = None
    # POST /alerts/alertmanager and /alerts/grafana answer only `Authorization: Bearer <token>` (or, from Grafana, its
    # HMAC signature made with this token as the secret); unset, both answer 404: alerts are not configured.
    opsbot_alerts_token: SecretStr | None = None
    opsbot_config: Path = Path("opsbot.yml")
    host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on all its interfaces; set HOST to narrow
    port: int = Field(default=3000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    # Traces to an OTLP/HTTP collector when set (and the `otel` extra is installed); off, nothing of it is loaded.
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str = Field(default="opsbot", min_length=1)
    # How soon replicas notice each other's death, and how often they look. A dead replica's run is marked
    # interrupted at most LEASE_SECONDS + CHORE_SECONDS after its last heartbeat (30 s by default); tests shorten
    # them instead of waiting them out.
    lease_seconds: float = Field(default=20.0, gt=0, description="a lease lapses, and a silent run counts as its "
                                                                 "replica's death, this long after its last renewal")
    heartbeat_seconds: float = Field(default=5.0, gt=0, description="how often a running action or scheduled job "
                                                                    "renews its lease and heartbeat")
    chore_seconds: float = Field(default=10.0, gt=0, description="how often each replica expires requests, "
                                                                 "interrupts dead replicas' runs and sends reminders")
    tick_seconds: float = Field(default=5.0, gt=0, description="the scheduler's longest wait between passes")
    shutdown_grace_seconds: float = Field(default=30.0, ge=0, description="after SIGTERM, how long running steps may "
                                          "take to finish before what is left is cut short (keep it under "
                                          "Kubernetes' terminationGracePeriodSeconds)")
    socket_down_seconds: float = Field(default=30.0, gt=0, description="in Socket Mode, /readyz answers 503 once the "
                                       "connection has been down this long")

    @field_validator("heartbeat_seconds")
    @classmethod
    def _renewed_in_time(cls, value: float, info: ValidationInfo) -> float:
        lease = info.data.get("lease_seconds")
        # Three renewals per lease: one slow or failed renewal must not let a live replica's lease lapse.
        if lease is not None and value > lease / 3:
            raise ValueError(f"must be at most a third of LEASE_SECONDS ({lease:g}), so a lease is renewed before "
                             "it lapses even when one renewal is slow")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("otel_exporter_otlp_endpoint", mode="before")
    @classmethod
    def _collector_url(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None  # set but empty, as a template leaves it: tracing off
        if isinstance(value, str) and not value.strip().startswith(("http://", "https://")):
            raise ValueError("must be the collector's http:// or https:// URL (e.g. http://otel-collector:4318)")
        return value.strip() if isinstance(value, str) else value

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

    @field_validator("opsbot_alerts_token")
    @classmethod
    def _alerts_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (or unset: no alerts are taken)")
        return value

    @field_validator("opsbot_metrics_token")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None  # set but empty, as an unfilled Secret key: no token
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (or unset, for an open /metrics)")
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


def load_settings(kind: type[StoreSettings] = Settings, **overrides: Any) -> StoreSettings:
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
