"""A shell block read as a script: its variables, each statement recognised, and the logic around them joined to
what they test — `X=$(df …)` then `if [ "$X" -gt 80 ]` is the disk check's limit, `if [ $? -ne 0 ]; then exit`
is the step's own failure, `for i in {1..12}; do curl …; sleep 10; done` is a gate's attempts, and a script
written with `cat > f.sh <<EOF` is read as the commands it holds.

Not responsible for one command's meaning (`recognise`) nor for the draft (`assemble`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace

from bot.importing import schedules, sql, thresholds
from bot.importing.argv import inside
from bot.importing.context import Context
from bot.importing.gates import check_step
from bot.importing.model import HIGH, CheckFinding, Found, Lines, Mapped, manual, medium
from bot.importing.recognise import recognise
from bot.importing.secrets import SECRET_NAME
from bot.importing.shell import Statement, Test, statements
from bot.importing.variables import Variables

_NARRATION = frozenset({"echo", "printf", "date", "exit", "true", ":", "set", "clear", "break", "continue", "return",
                        "shift", "trap", "cd", "pushd", "popd", "sync"})
_VERIFY = frozenset({"gunzip", "gzip", "zcat", "tar", "sha256sum", "md5sum"})
_DONE = "the step's own failure stops the run"
_DATABASES = {"psql": "postgres", "mysql": "mysql", "mariadb": "mysql"}


@dataclasses.dataclass
class Scripts:
    """Scripts a runbook writes (`cat > /opt/backup.sh <<EOF`) or names in a block's first comment, by path."""

    by_path: dict[str, list[Mapped]] = dataclasses.field(default_factory=dict)

    def find(self, command: str) -> list[Mapped] | None:
        path = command.split()[0] if command.split() else ""
        if path in ("bash", "sh") and len(command.split()) > 1:
            path = command.split()[1]
        if path in self.by_path:
            return self.by_path[path]
        name = path.rsplit("/", 1)[-1]
        matches = [items for known, items in self.by_path.items() if known.rsplit("/", 1)[-1] == name]
        return matches[0] if len(matches) == 1 else None


def read(code: str, first_line: int, context: Context, scripts: Scripts) -> list[Mapped]:
    """The block's statements as mapped items, in order (a written script's commands where it is written)."""
    items = _typed_sql(_Reader(context, scripts, Variables()).block(statements(code, first_line)), code, first_line,
                       context)
    crons = schedules.in_comments(code, first_line)
    if crons:
        editor = next((index for index, item in enumerate(items) if _program(item) == "crontab"), None)
        found = Found(crons=tuple(crons))
        if editor is not None:
            items[editor] = replace(items[editor], found=found)
        else:
            line = crons[0].line
            items.append(Mapped(Lines(context.source, line, line), f"# {crons[0].cron} {crons[0].command}", "", found,
                                control=True))
    return items


def _typed_sql(items: list[Mapped], code: str, first_line: int, context: Context) -> list[Mapped]:
    """What is typed into a `psql` / `mysql` session the block opens: its SQL statements as steps on that database."""
    opened = next((index for index, item in enumerate(items) if item.found.session), None)
    if opened is None:
        return items
    session = items[opened]
    engine = _DATABASES.get(_inner_program(session), "")
    service = next((hint.service for hint in session.found.targets), None)
    if not engine or service is None:
        return items
    rest = "\n".join(code.splitlines()[session.lines.last - first_line + 1:])
    typed = []
    for statement in sql.split(rest, session.lines.last + 1):
        lines = Lines(context.source, statement.first_line, statement.last_line)
        found = sql.step(statement, service, engine) if statement.is_sql else Found(
            manual=f"typed into the session opened at {session.lines}")
        typed.append(Mapped(lines, statement.written, "", found))
    if not any(item.found.manual is None for item in typed):  # nothing imported from it: the session stays a person's
        return items
    consumed = replace(session, found=Found(consumed=f"opens a {_inner_program(session)} session: the SQL typed into "
                                                     "it is imported as steps", targets=session.found.targets,
                                            decisions=session.found.decisions))
    return [*items[:opened], consumed, *typed]


def _inner_program(item: Mapped) -> str:
    statement = item.statement
    if statement is None or not statement.commands:
        return ""
    wrapped = inside(statement.commands[0])
    return wrapped.command.program if wrapped is not None else statement.commands[0].program


def _program(item: Mapped) -> str:
    statement = item.statement
    return statement.commands[0].program if statement is not None and statement.commands else ""


class _Reader:
    def __init__(self, context: Context, scripts: Scripts, variables: Variables) -> None:
        self.context, self.scripts, self.variables = context, scripts, variables
        self.captured: dict[str, Mapped] = {}  # variable → the item whose output it holds
        self.confirmations: set[str] = set()  # variables `read -p` fills: a person's yes

    def block(self, found: list[Statement]) -> list[Mapped]:
        items: list[Mapped] = []
        opened: Mapped | None = None
        for statement in found:
            if _narration(statement):
                continue
            if opened is not None:
                item = recognise(statement, self.context, self.variables)
                items.append(replace(item, found=Found(manual=f"typed into the session opened at "
                                                               f"{opened.lines}")))
                continue
            new = self.statement(statement, items)
            items.extend(new)
            if new and new[-1].found.session:
                opened = new[-1]
        return self._consume(items)

    def statement(self, statement: Statement, items: list[Mapped]) -> list[Mapped]:
        if statement.assignments_only:
            return self._assign(statement)
        if statement.writes and statement.body and (statement.writes.endswith(".sh") or
                                                    statement.body.startswith("#!")):
            body = _Reader(self.context, self.scripts, Variables()).block(statements(statement.body,
                                                                                     statement.body_line))
            self.scripts.by_path[statement.writes] = body
            return body
        if statement.test is not None:
            return self._test(statement, items)
        if statement.repeat:
            return [self._loop(statement)]
        if statement.commands and statement.commands[0].program == "read" and "-p" in statement.commands[0].words:
            names = [w for w in statement.commands[0].words[1:] if not w.startswith("-")]
            self.confirmations.update(names[-1:])
            return [self._control(statement, "a confirmation prompt: the run's approval asks instead")]
        item = recognise(statement, self.context, self.variables)
        if statement.captures:
            self.variables.captured(statement.captures, statement.text)
            if statement.commands and statement.commands[0].program == "date" and len(statement.commands) == 1:
                return []  # `DATE=$(date +%F)`: a time stamp for file names
            self.captured[statement.captures] = item
        return [item]

    def _assign(self, statement: Statement) -> list[Mapped]:
        for name, word in statement.assignments_only:
            self.variables.assign(name, word)
        item = recognise(statement, self.context, self.variables)
        secret = [name for name, word in statement.assignments_only if SECRET_NAME.search(name) and word.literal]
        if not secret:
            return []
        return [replace(item, control=True, found=Found(consumed="a secret's value: never copied",
                                                        decisions=item.found.decisions))]

    def _control(self, statement: Statement, consumed: str, *decisions: str) -> Mapped:
        return Mapped(Lines(self.context.source, statement.first_line, statement.last_line), statement.text,
                      statement.comment, Found(consumed=consumed, decisions=decisions), control=True,
                      statement=statement)

    def _test(self, statement: Statement, items: list[Mapped]) -> list[Mapped]:
        test = statement.test
        assert test is not None  # the caller's condition
        if statement.condition is not None or test.variable == "?":
            return self._outcome(statement, test, items)
        if test.variable in self.captured:
            return self._limit(statement, test, items)
        if test.variable in self.variables.arguments and test.operator in ("-z", "-n", "-f", "!-f", "-e", "!-e"):
            return [self._control(statement, f"the script's argument ${test.variable}: a runbook parameter, asked "
                                             "for before the run")]
        if test.variable in self.confirmations:
            return [self._control(statement, "the answer to the confirmation: the run's approval")]
        return [recognise(replace(statement, test=None, complex=True), self.context, self.variables)]

    def _outcome(self, statement: Statement, test: Test, items: list[Mapped]) -> list[Mapped]:
        """`cmd; if [ $? -eq 0 ]; then A; else B; fi` (or `if cmd; then …`): A follows cmd's step, B is its failure."""
        before: list[Mapped] = []
        if statement.condition is not None:
            before = self.statement(statement.condition, items)
        previous_items = [*items, *before]
        previous = next((item for item in reversed(previous_items) if not item.control), None)
        success_first = (test.operator == "==") == (test.value == "0")
        success, failure = (test.then_body, test.else_body) if success_first else (test.else_body, test.then_body)
        stops = any(s.commands and s.commands[0].program == "exit" for s in failure)
        acts = [s for s in failure if not _narration(s)]
        if previous is None or previous.found.manual is not None:
            whole = recognise(replace(statement, test=None, condition=None, complex=True), self.context,
                              self.variables)
            return [*before, replace(whole, control=previous is not None, found=manual(
                "the outcome test of a manual step" if previous is not None else "tests a status no step set"))]
        decisions = []
        if acts:
            decisions.append(f"on failure the script runs `{acts[0].text.splitlines()[0][:60]}`"
                             f"{' and more' if len(acts) > 1 else ''}: not imported (a failed step stops the run, "
                             "and people choose)")
        if not stops and any(step["kind"] == "check" for step in previous.steps):
            index = previous_items.index(previous)
            changed = replace(previous, found=replace(previous.found, steps=tuple(
                {**step, "on_failure": "continue"} if step["kind"] == "check" else step
                for step in previous.found.steps)))
            if index < len(items):
                items[index] = changed
            else:
                before[index - len(items)] = changed
        what = _DONE if stops else "the script carries on after a failure: so does the step (on_failure: continue)"
        control = self._control(statement, f"the outcome of {previous.lines}: {what}", *decisions)
        return [*before, control, *self.block(list(success))]

    def _limit(self, statement: Statement, test: Test, items: list[Mapped]) -> list[Mapped]:
        captured = self.captured[test.variable]
        index = next((i for i, item in enumerate(items) if item is captured), None)
        target = items[index] if index is not None else None
        findings = [f for f in target.found.checks if f.measure is not None] if target is not None else []
        if target is None or index is None or not findings:
            return [recognise(replace(statement, test=None, complex=True), self.context, self.variables)]
        finding = findings[0]
        limit = thresholds.from_test(test)
        if limit is not None:
            changed, why = thresholds.apply(finding, limit)
        elif finding.measure is not None and finding.measure.text:
            changed, why = thresholds.expectation(finding, test)
        else:
            changed, why = finding, "the comparison says no limit the check can take"
        if why:
            whole = recognise(replace(statement, test=None, complex=True), self.context, self.variables)
            return [replace(whole, found=manual(f"a comparison the check cannot take: {why}"))]
        items[index] = self.captured[test.variable] = _with_check(target, finding, changed)
        acts = [s for s in (*test.then_body, *test.else_body) if not _narration(s)]
        decisions = [(f"past the limit the script runs `{acts[0].text.splitlines()[0][:60]}`: not imported (the "
                      "check reports, people act)")] if acts else []
        return [self._control(statement, f"the limit of the check at {target.lines}", *decisions)]

    def _loop(self, statement: Statement) -> Mapped:
        """A retry loop around one check with a pause: the check step's attempts and interval."""
        inner = _Reader(self.context, self.scripts, self.variables).block(list(statement.loop))
        gates = [item for item in inner if item.found.manual is None and item.found.checks
                 and any(step["kind"] == "check" for step in item.steps)]
        waits = [step["seconds"] for item in inner for step in item.steps if step["kind"] == "wait"
                 and isinstance(step["seconds"], int | float)]  # a check's interval is a number, never a parameter
        lines = Lines(self.context.source, statement.first_line, statement.last_line)
        if len(gates) != 1 or len(waits) != 1:
            return Mapped(lines, statement.text, statement.comment,
                          manual("a loop: only a person follows it (a retry loop around one check and a sleep is a "
                                 "check step's attempts)"), statement=statement)
        gate = gates[0]
        step = {**next(step for step in gate.steps if step["kind"] == "check"), "attempts": statement.repeat,
                "interval": waits[0]}
        step.pop("on_failure", None)
        others = [item for item in inner if item is not gate and not item.control and item.found.manual is not None]
        sure = HIGH if not others else medium("what the loop does besides retrying is not imported: "
                                              + "; ".join(item.text.splitlines()[0][:50] for item in others[:2]))
        found = Found((step,), checks=gate.found.checks, targets=gate.found.targets, sure=gate.found.sure.also(sure),
                      decisions=gate.found.decisions)
        return Mapped(lines, statement.text, statement.comment, found, statement=statement)

    def _consume(self, items: list[Mapped]) -> list[Mapped]:
        """What a backup or a written script makes unnecessary: its directory, its verification, its chmod."""
        backups = any(item.found.backups for item in items)
        out = []
        for item in items:
            program = _program(item)
            words = item.statement.commands[0].words if program and item.statement is not None else ()
            if backups and program in _VERIFY and _verifies(words) and not item.control:
                item = _consumed(item, "verifies the backup: opsbot verifies each backup it takes")
            elif item.found.manual is not None and not item.control:
                if backups and program == "mkdir":
                    item = _consumed(item, "makes the backup directory: opsbot's backup makes its own")
                elif program == "chmod" and any(word in self.scripts.by_path for word in words):
                    item = _consumed(item, "makes the script runnable: its commands are imported instead")
            out.append(item)
        return out


def _verifies(words: tuple[str, ...]) -> bool:
    flags = "".join(word.lstrip("-") for word in words[1:] if word.startswith("-"))
    return "t" in flags or "--test" in words


def _consumed(item: Mapped, why: str) -> Mapped:
    return replace(item, found=Found(consumed=why, decisions=item.found.decisions))


def _with_check(item: Mapped, old: CheckFinding, new: CheckFinding) -> Mapped:
    found = item.found
    checks = tuple(new if finding is old else finding for finding in found.checks)
    steps = found.steps
    if not old.complete and new.complete:  # a potential check (a query's number) became one: its gate replaces the query
        steps = (check_step(new),)
        return replace(item, found=Found(steps, checks=checks, targets=found.targets, decisions=found.decisions,
                                         sure=found.sure.also(new.sure)))
    if found.manual is not None and new.complete:
        return replace(item, found=Found((check_step(new),), checks=checks, targets=found.targets,
                                         decisions=found.decisions, sure=found.sure.also(new.sure)))
    return replace(item, found=replace(found, checks=checks, sure=found.sure.also(new.sure)))


def _narration(statement: Statement) -> bool:
    if len(statement.commands) != 1 or (statement.redirect_out and statement.output not in ("/dev/null", "")):
        return False
    command = statement.commands[0]
    return command.program in _NARRATION and not statement.captures

