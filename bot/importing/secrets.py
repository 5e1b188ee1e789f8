"""Secrets written into a runbook's commands: found, named as environment variables, and kept out of the draft.

Not responsible for where a secret should live (the catalog's `*_env` fields, the deployment's environment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.importing.shell import Command, Statement, every_command
from bot.importing.words import Word

SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|KEY|DSN|CREDENTIAL", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"://[^/:@\s]+:([^/@\s]+)@")
_URL_QUERY = re.compile(r"[?&]([\w.-]+)=([^&#\s]+)")  # `?api_key=…` in a URL
_SETTING = re.compile(r"^([A-Za-z_][\w.-]*)=(.+)$")  # `-e PGPASSWORD=…`, `--from-literal=password=…`, `--set a.token=…`
_HEADER = re.compile(r"^([A-Za-z][\w-]*):\s*(\S.*)$")  # `-H 'X-Api-Key: …'`
_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_TOOLS = frozenset({"mysql", "mysqldump", "mysqladmin", "redis-cli", "curl", "psql", "pg_dump", "pg_restore"})
_PASSWORD_OPTIONS = {"--password", "--pass", "--token", "--api-key", "--secret"}


@dataclass(frozen=True)
class Secret:
    value: str  # the literal as written: never copied into the draft
    env: str  # the environment variable that should hold it


def found(statement: Statement) -> list[Secret]:
    """Literal secrets in `statement`: assignments to secret-sounding names, password options, URL passwords —
    in every command its text holds, also inside a condition or a loop (whose text a manual step carries)."""
    secrets: list[Secret] = []
    pairs = list(statement.assignments_only)
    for command in (*statement.commands, *every_command(statement.text)):
        pairs += list(command.assignments)
        secrets += _in_argv(command)
    secrets += [Secret(word.text, _env(name)) for name, word in pairs
                if SECRET_NAME.search(name) and word.literal and word.text]
    return list(dict.fromkeys(secret for secret in secrets if secret.value))


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
        elif text == "-p" and "login" in command.words[1:index] and index + 1 < len(words) and words[index + 1].literal:
            secrets.append(Secret(words[index + 1].text, f"{prefix}_PASSWORD"))  # `docker login -u ci -p …`
        header = _HEADER.match(text)
        if header and (header.group(1).lower() in _HEADERS or SECRET_NAME.search(header.group(1))):
            value = header.group(2).strip()
            # `Authorization: Bearer …`: the credentials after the scheme
            value = value.split(" ")[-1] if header.group(1).lower().endswith("authorization") else value
            secrets.append(Secret(value, "AUTH_TOKEN" if header.group(1).lower() == "authorization"
                                  else _env(header.group(1))))
        setting = _SETTING.match(text.split("=", 1)[1] if text.startswith("-") and "=" in text else text)
        if setting and SECRET_NAME.search(setting.group(1)):
            secrets.append(Secret(setting.group(2), _env(setting.group(1))))
        match = _URL_PASSWORD.search(text)
        if match:
            secrets.append(Secret(match.group(1), f"{prefix}_URL_PASSWORD"))
        if "://" in text:
            secrets += [Secret(value, _env(name)) for name, value in _URL_QUERY.findall(text) if SECRET_NAME.search(name)]
    return secrets
