"""Settings from the environment: defaults, and one clear line per missing or bad setting, secrets never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import Settings, StoreSettings, load_settings

NAMES = ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL", "DATABASE_URL",
         "REDIS_URL", "OPSBOT_CONFIG", "PORT", "LOG_LEVEL", "HOST", "LEASE_SECONDS", "HEARTBEAT_SECONDS",
         "CHORE_SECONDS", "TICK_SECONDS"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_run_on_embedded_sqlite(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    clean_env.setenv("SLACK_SIGNING_SECRET", "shh")
    settings = load_settings()
    assert isinstance(settings, Settings)
    assert settings.database_url == "sqlite:///data/opsbot.db" and not settings.is_postgres
    assert settings.sqlite_path == Path("data/opsbot.db")
    assert settings.port == 3000 and settings.opsbot_config == Path("opsbot.yml")
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.socket_mode is False and settings.redis_url is None


def test_missing_tokens_are_named_one_per_line() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings()
    lines = str(caught.value).splitlines()
    assert [line.split(" ")[0] for line in lines] == ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"]
    assert all("is not set" in line for line in lines)


def test_a_wrong_token_is_named_but_never_echoed(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SLACK_BOT_TOKEN", "xoxp-user-token-secret")
    clean_env.setenv("SLACK_SIGNING_SECRET", "shh")
    clean_env.setenv("SLACK_APP_TOKEN", "xoxb-not-an-app-token")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    text = str(caught.value)
    assert "SLACK_BOT_TOKEN must start with xoxb-" in text and "SLACK_APP_TOKEN must start with xapp-" in text
    assert "secret" not in text.replace("Signing Secret", "") and "not-an-app-token" not in text


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PORT", "eighty", "PORT input should be a valid integer"),
        ("PORT", "70000", "PORT input should be less than or equal to 65535"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL must start with sqlite:/// or postgresql://"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must start with redis://"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
    ],
)
def test_bad_values_name_the_setting(clean_env: pytest.MonkeyPatch, name: str, value: str, expected: str) -> None:
    clean_env.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    clean_env.setenv("SLACK_SIGNING_SECRET", "shh")
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(expected)


def test_socket_mode_and_postgres_and_redis(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "SLACK_APP_TOKEN": "xapp-1",
                        "DATABASE_URL": "postgresql://u@db/opsbot", "REDIS_URL": "redis://:pw@cache:6379/0",
                        "SLACK_API_URL": "https://slack-gov.com/api", "log_level": "debug"}.items():
        clean_env.setenv(name, value)
    settings = load_settings()
    assert isinstance(settings, Settings)
    assert settings.socket_mode and settings.is_postgres and settings.log_level == "DEBUG"
    assert settings.slack_api_url == "https://slack-gov.com/api/"
    assert "pw" not in repr(settings)  # secrets are SecretStr


def test_migrate_needs_only_the_database() -> None:
    assert isinstance(load_settings(StoreSettings), StoreSettings)


def test_a_dead_replicas_run_is_seen_within_30_s_by_default_and_the_times_are_settings(
        clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    clean_env.setenv("SLACK_SIGNING_SECRET", "shh")
    settings = load_settings()
    assert isinstance(settings, Settings)
    # A run is stale a lease after its last heartbeat; a chore pass notices it at most a chore interval later.
    assert settings.lease_seconds + settings.chore_seconds <= 30
    assert settings.heartbeat_seconds <= settings.lease_seconds / 3 and settings.tick_seconds <= settings.chore_seconds
    for name, value in (("LEASE_SECONDS", "3"), ("HEARTBEAT_SECONDS", "0.5"), ("CHORE_SECONDS", "1"), ("TICK_SECONDS", "0.2")):
        clean_env.setenv(name, value)
    shortened = load_settings()
    assert isinstance(shortened, Settings)
    assert (shortened.lease_seconds, shortened.heartbeat_seconds, shortened.chore_seconds, shortened.tick_seconds) == (
        3, 0.5, 1, 0.2)


@pytest.mark.parametrize(("values", "expected"), [
    ({"LEASE_SECONDS": "6", "HEARTBEAT_SECONDS": "5"}, "HEARTBEAT_SECONDS must be at most a third of LEASE_SECONDS (6)"),
    ({"LEASE_SECONDS": "0"}, "LEASE_SECONDS input should be greater than 0; expected seconds"),
    ({"CHORE_SECONDS": "soon"}, "CHORE_SECONDS input should be a valid number"),
    ({"TICK_SECONDS": "-1"}, "TICK_SECONDS input should be greater than 0"),
])
def test_bad_times_are_refused_naming_what_is_valid(clean_env: pytest.MonkeyPatch, values: dict[str, str],
                                                    expected: str) -> None:
    clean_env.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    clean_env.setenv("SLACK_SIGNING_SECRET", "shh")
    for name, value in values.items():
        clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(expected), str(caught.value)
