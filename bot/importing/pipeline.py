"""One statement as the recognisers read it: its pipeline (a container wrapper's inner command first), where it
runs, the variables its script set before it, and the target and environment names a service gets from it.

Not responsible for what the pipeline means (the families: `checks`, `backups`, `steps`, `schedules`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from bot.importing.argv import Inside, inside, option
from bot.importing.context import ENGINES, Context
from bot.importing.model import HIGH, STACK, Data, TargetHint, low, medium
from bot.importing.services import Resolved
from bot.importing.shell import Command, Statement
from bot.importing.variables import Accepts, Value, Variables
from bot.importing.words import Word

_ORDINAL = re.compile(r"-\d+$")
_NAMESPACE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def fixed_directory(path: str) -> str | None:
    """The part of a path written out before its first expansion (`/backups/$(date +%F)/x.sql` → /backups/)."""
    parts: list[str] = []
    for part in path.split("/"):
        if any(char in part for char in "$`*?"):
            break
        parts.append(part)
    fixed = "/".join(parts)
    return fixed if fixed.startswith("/") and fixed.strip("/") else None


def env_name(service: str) -> str:
    """The environment variable the draft names for a service's connection URL (`POSTGRES_URL`)."""
    return re.sub(r"[^A-Z0-9]", "_", service.upper()) + "_URL"


@dataclass(frozen=True)
class Pipeline:
    """A statement's commands with a container wrapper's inner command first, and where it runs."""

    statement: Statement
    commands: tuple[Command, ...]
    inside: Inside | None
    context: Context
    variables: Variables

    @classmethod
    def of(cls, statement: Statement, context: Context, variables: Variables) -> Pipeline:
        commands = statement.commands
        wrapped = inside(commands[0]) if commands else None
        if wrapped is not None:
            commands = (wrapped.command, *commands[1:])
        return cls(statement, commands, wrapped, context, variables)

    def alone(self, command: Command) -> Pipeline:
        """One of its commands read on its own (`… | docker compose exec -T db psql`: the psql, inside db)."""
        return Pipeline.of(dataclasses.replace(self.statement, commands=(command,)), self.context, self.variables)

    @property
    def first(self) -> Command:
        return self.commands[0]

    @property
    def rest(self) -> tuple[Command, ...]:
        return self.commands[1:]

    @property
    def program(self) -> str:
        return self.first.program

    @property
    def words(self) -> tuple[str, ...]:
        return self.first.words

    def later(self, program: str) -> Command | None:
        return next((command for command in self.rest if command.program == program), None)

    def where(self) -> Resolved | None:
        """The service the wrapper names (`docker compose exec db …` → db), or None on a host."""
        return self.context.named(self.inside.name) if self.inside is not None else None

    def engine_service(self) -> Resolved:
        """The database service the first command's tool talks to: where it runs, else its -h host."""
        where = self.where()
        if where is not None:
            return where
        host = option(list(self.words[1:]), "-h", "--host") if self.program not in ("curl", "df", "free") else None
        host = self.text(host) or host  # `-h "$DB_HOST"`: the host the script set
        return self.context.for_engine(ENGINES.get(self.program, self.program), host)

    def word(self, written: str) -> Word:
        """The statement's word written `written` — or the rest of one after a literal prefix (`registry/app:$V` of
        `app=registry/app:$V`, `$N` of `--replicas=$N`) — for a value a recogniser read from the words' text."""
        words = [word for command in (*self.commands, *self.statement.commands) for word in command.argv]
        exact = next((word for word in words if word.text == written), None)
        if exact is not None:
            return exact
        for word in words:
            if len(word.text) > len(written) and word.text.endswith(written):
                rest = word.after(word.text[:-len(written)])
                if rest is not None:
                    return rest
        return Word(written, True)  # text a recogniser made: as it is (a `$` in it is never copied)

    def value(self, written: str | Word, accepts: Accepts, *, hint: str = "", least: int = 0,
              image: bool = False) -> Value:
        """A step's or check's value from a word of the statement (`Variables.value`)."""
        word = self.word(written) if isinstance(written, str) else written
        return self.variables.value(word, accepts, hint=hint, least=least, image=image)

    def text(self, written: str | None) -> str | None:
        """A word as literal text, the script's values filled in; None when it is not written out."""
        return None if written is None else self.value(written, Accepts.TEXT).text

    def argv(self, command: Command) -> tuple[list[str] | None, dict[str, dict[str, Any]], str]:
        """The argv as an exec step's command: each element text, or a runbook parameter as a whole element; None
        and why when an element cannot be either."""
        argv: list[str] = []
        parameters: dict[str, dict[str, Any]] = {}
        for word in command.argv:
            value = self.variables.value(word, Accepts.ELEMENT)
            if value.text is None:
                return None, {}, value.why
            argv.append(value.text)
            parameters |= value.parameters
        return argv, parameters, ""

    def namespace(self, written: str | None) -> str | None:
        """A Kubernetes namespace an option names, when it is written out (else the runbook's most named one)."""
        text = self.text(written)
        return text if text is not None and _NAMESPACE.match(text) else None

    def target_hints(self) -> tuple[TargetHint, ...]:
        if self.inside is None:
            return ()
        where = self.where()
        if where is None or where.service is None:
            return ()
        return (target_hint(self.inside.platform, self.inside.name, where.service, self.context,
                            self.namespace(self.inside.namespace)),)


def target_hint(platform: str, name: str, service: str, context: Context, namespace: str | None = None) -> TargetHint:
    """The `target:` a service named this way has: a compose service, a container or a Kubernetes deployment."""
    if platform == "compose":
        labels: Data = {"com.docker.compose.service": name}
        if context.project:
            return TargetHint(service, {"type": "docker", "labels": {"com.docker.compose.project": context.project,
                                                                     **labels}})
        return TargetHint(service, {"type": "docker", "labels": labels},
                          medium("no compose project is named (-p, or -f with a directory): any project's service "
                                 f"{name} matches; add the label com.docker.compose.project"))
    if platform == "docker":
        return TargetHint(service, {"type": "docker", "container": name})
    space = namespace if namespace and _NAMESPACE.match(namespace) else context.namespace
    target = {"type": "kubernetes", "namespace": space or "default", "deployment": service}
    sure = HIGH if space else medium("no namespace is named: `default`")
    bare = name.split("/")[-1]
    if _ORDINAL.search(bare) and not bare.startswith(("deploy", "deployment")):
        sure = sure.also(low(f"{bare} is a pod's name (a StatefulSet's?): the target names a Deployment, {service}"))
    return TargetHint(service, target, sure)


def stack_target(context: Context) -> TargetHint:
    project = context.project or re.sub(r"[^a-z0-9_-]+", "-", context.source.rsplit(".", 1)[0].lower()).strip("-")
    sure = HIGH if context.project else low(f"no compose project is named: taken as {project!r} (the directory "
                                            "docker compose runs in names it)")
    return TargetHint(STACK, {"type": "docker", "labels": {"com.docker.compose.project": project}}, sure)
