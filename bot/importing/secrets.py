"""Secrets written into a runbook's commands: found, named as environment variables, and kept out of the draft.

Not responsible for where a secret should live (the catalog's `*_env` fields, the deployment's environment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.importing.shell import Command, Statement
from bot.importing.words import Word

SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|KEY|DSN|CREDENTIAL", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"://[^/:@\s]+:([^/@\s]+)@")
_TOOLS = frozenset({"mysql", "mysqldump", "mysqladmin", "redis-cli", "curl", "psql", "pg_dump", "pg_restore"})
_PASSWORD_OPTIONS = {"--password", "--pass", "--token", "--api-key", "--secret"}


@dataclass(frozen=True)
class Secret:
    value: str  # the literal as written: never copied into the draft
    env: str  # the environment variable that should hold it


def found(statement: Statement) -> list[Secret]:
    """Literal secrets in `statement`: assignments to secret-sounding names, password options, URL passwords."""
    secrets: list[Secret] = []
    pairs = list(statement.assignments_only)
    for command in statement.commands:
        pairs += list(command.assignments)
        secrets += _in_argv(command)
    secrets += [Secret(word.text, _env(name)) for name, word in pairs
                if SECRET_NAME.search(name) and word.literal and word.text]
    return [secret for secret in secrets if secret.value]


def redact(text: str, secrets: list[Secret]) -> str:
    for secret in sorted(secrets, key=lambda item: -len(item.value)):
        text = text.replace(secret.value, f"${secret.env}")
    return text


def referenced(statement: Statement) -> list[str]:
    """Secret-sounding variables the statement reads (`$DB_PASSWORD`): fine, but the catalog names them as `*_env`."""
    words: list[Word] = [word for command in statement.commands for word in command.argv]
    words += [word for command in statement.commands for _, word in command.assignments]
    return sorted({name for word in words for name in word.variables if SECRET_NAME.search(name)})


def _env(name: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", name.upper())


def _in_argv(command: Command) -> list[Secret]:
    program, words = command.program, command.argv
    secrets: list[Secret] = []
    for index, word in enumerate(words[1:], start=1):
        if not word.literal:
            continue
        text = word.text
        if text.rsplit("/", 1)[-1] in _TOOLS:  # `docker exec db mysql -p…`: the options after it are mysql's
            program = text.rsplit("/", 1)[-1]
        prefix = re.sub(r"[^A-Z0-9]", "_", program.upper()) or "COMMAND"
        option, _, value = text.partition("=")
        if option in _PASSWORD_OPTIONS and value:
            secrets.append(Secret(value, f"{prefix}_PASSWORD"))
        elif text in _PASSWORD_OPTIONS and index + 1 < len(words) and words[index + 1].literal:
            secrets.append(Secret(words[index + 1].text, f"{prefix}_PASSWORD"))
        elif program.startswith("mysql") and text.startswith("-p") and len(text) > 2:
            secrets.append(Secret(text[2:], "MYSQL_PASSWORD"))
        elif program == "redis-cli" and text == "-a" and index + 1 < len(words) and words[index + 1].literal:
            secrets.append(Secret(words[index + 1].text, "REDIS_PASSWORD"))
        elif program == "curl" and text in ("-u", "--user") and index + 1 < len(words) and words[index + 1].literal:
            user_password = words[index + 1].text
            if ":" in user_password:
                secrets.append(Secret(user_password.split(":", 1)[1], "CURL_PASSWORD"))
        elif text.lower().startswith("authorization:"):
            secrets.append(Secret(text.split(":", 1)[1].strip().split(" ")[-1], "AUTH_TOKEN"))
        match = _URL_PASSWORD.search(text)
        if match:
            secrets.append(Secret(match.group(1), f"{prefix}_URL_PASSWORD"))
    return secrets
