"""The `exec` kind: a command (an argv written in the catalog) run inside one of the service's containers or pods;
its exit code decides, its output's tail is the step's detail and the whole of it is uploaded; an optional undo argv.

Not responsible for how a command is run or stopped (`bot.executors`, capability `Execs`). Parameters reach a
command only as whole argv elements, never spliced into a string, and never into a shell's script.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from bot.executors.base import Effect, ExecResult, Execs, ExecutorError
from bot.runs import targets
from bot.runs.models import ActionRun
from bot.runs.steps.base import (
    PARAM_REFERENCE,
    Note,
    PlannedStep,
    StepDeps,
    StepKind,
    Traits,
    UndoBook,
    _ServiceStep,
    register,
)
from bot.views import human_size

SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "busybox"})
TAIL_LINES, TAIL_CHARS = 8, 300  # what of the output the step's detail shows (the engine keeps 500 characters)
MARGIN = 0.1  # of the step's timeout kept back from the command, to end it and upload its output before the engine
# cuts the step

_MUTATING = Traits(changes=True, undo=None, cut_short=Effect.UNKNOWN, needs="target", capability=(Execs,))


def _argv(value: list[str]) -> list[str]:
    """Each element is text, or exactly one `{{ params.x }}` (the value becomes that whole element); a shell's
    script (`sh -c SCRIPT`) holds no parameter at all."""
    script = _shell_script(value)
    if script is not None and PARAM_REFERENCE.search(value[script]):
        raise ValueError(f"{value[0]} {value[script - 1]} runs its script through a shell, so a parameter there "
                         "could run as code: write the script out in full, and pass a value as an argument after "
                         "it (`[sh, -c, 'echo \"$1\"', sh, \"{{ params.x }}\"]`) or call the program directly")
    for element in value:
        rest = PARAM_REFERENCE.sub("", element)
        if rest != element and PARAM_REFERENCE.fullmatch(element.strip()) is None:
            raise ValueError(f"{element!r}: a parameter must be a whole argv element (`- \"{{{{ params.x }}}}\"`), "
                             "never part of a longer string")
        if "{{" in rest or "{%" in rest or "}}" in rest:
            raise ValueError(f"{element!r}: the only template form is {{{{ params.<name> }}}}")
    return value


def _shell_script(argv: list[str]) -> int | None:
    """The index of the script element of `sh -c SCRIPT` (or -lc, -ec…, `busybox sh -c`); None if not a shell."""
    rest = argv[1:] if posixpath.basename(argv[0]) == "busybox" else argv
    if not rest or posixpath.basename(rest[0]) not in SHELLS - {"busybox"}:
        return None
    start = len(argv) - len(rest)
    for index in range(start + 1, len(argv)):
        flag = argv[index]
        if not flag.startswith("-") or flag == "--":
            return None
        if "c" in flag[1:] and not flag.startswith("--"):
            return index + 1 if index + 1 < len(argv) else None
    return None


class ExecStep(_ServiceStep):
    kind: Literal["exec"]
    command: list[str] = Field(min_length=1, max_length=200, description="the argv, run without a shell; "
                               "`{{ params.x }}` only as a whole element")
    read_only: bool = Field(default=False, description="true: it changes nothing (diagnostics), so a failure or a "
                            "timeout leaves the service untouched")
    undo: list[str] | None = Field(default=None, min_length=1, max_length=200, description="the argv that reverses "
                                   "it, run in the same container; None: no undo")
    container: str | None = Field(default=None, min_length=1, description="Kubernetes: the pod's container; Docker: "
                                  "which of the service's containers. None: the target's container, else the first")
    max_output_kb: int = Field(default=64, ge=1, le=10 * 1024, description="output kept per stream (its end)")

    @field_validator("command", "undo")
    @classmethod
    def _whole_elements(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not element for element in value[:1]):
            raise ValueError("the program (the first element) must not be empty")
        return _argv(value) if value is not None else None


def _traits(args: Mapping[str, Any]) -> Traits:
    if args.get("read_only"):
        return dataclasses.replace(_MUTATING, changes=False, cut_short=Effect.UNTOUCHED)
    return dataclasses.replace(_MUTATING, undo="run the undo command" if args.get("undo") else None)


def _words(argv: list[Any]) -> str:
    return " ".join(str(part) if str(part) and " " not in str(part) else repr(str(part)) for part in argv)


async def _describe(deps: StepDeps, service: str | None, args: dict[str, Any]) -> tuple[str, str]:
    inside = f" in container {args['container']}" if args.get("container") else ""
    marked = " (read-only)" if args.get("read_only") else ""
    return f"Run `{_words(args['command'])}` in {service}{inside}{targets.where(deps, service)}{marked}", ""


def _budget(timeout: float) -> float:
    return max(timeout * (1 - MARGIN), timeout - 30)


async def _run(deps: StepDeps, step: PlannedStep, argv: list[str]) -> ExecResult:
    async with targets.capable(deps, step.service or "", Execs) as found:
        workload: Execs = found
        return await workload.exec(argv, container=step.args.get("container"), timeout=_budget(step.timeout),
                                   max_bytes=int(step.args["max_output_kb"]) * 1024)


def _text(result: ExecResult) -> str:
    parts = []
    if result.stdout:
        parts.append(result.stdout.decode(errors="replace"))
    if result.stderr:
        parts.append(("stderr:\n" if result.stdout else "") + result.stderr.decode(errors="replace"))
    return "\n".join(part.rstrip("\n") for part in parts)


def _tail(text: str) -> str:
    lines = text.strip().splitlines()[-TAIL_LINES:]
    tail = " ⏎ ".join(line.strip() for line in lines if line.strip())
    return tail if len(tail) <= TAIL_CHARS else "…" + tail[-TAIL_CHARS + 1:]


async def _upload(deps: StepDeps, run: ActionRun, step: PlannedStep, result: ExecResult, text: str) -> str:
    """The whole kept output as a file when the detail shows only its tail; returns a note for the detail."""
    if len(text) <= TAIL_CHARS and text.count("\n") < TAIL_LINES and not result.dropped:
        return ""
    if not run.channel_id:
        return "; the whole output was not uploaded (the run has no channel)"
    dropped = f"(the first {human_size(result.dropped)} of output were not kept)\n" if result.dropped else ""
    stamp = deps.clock.now().strftime("%Y%m%d-%H%M%S")
    ended = "cut at its timeout" if result.exit_code is None else f"exit {result.exit_code}"
    await deps.chat.upload(run.channel_id, filename=f"{step.service}-exec-{stamp}.txt",
                           title=f"Output of {_words(step.args['command'])} in {result.where}", content=dropped + text,
                           comment=f"Output of `{step.title}` ({ended}), runbook run #{run.id}.")
    return f"; whole output ({human_size(len(text.encode()) + result.dropped)}) uploaded"


def _failed(step: PlannedStep, result: ExecResult, what: str, text: str, uploaded: str) -> ExecutorError:
    read_only = bool(step.args.get("read_only"))
    tail = _tail(text)
    # A mutating command that failed or was cut may have changed things before it stopped.
    state = ("unchanged: the command only reads" if read_only
             else f"unknown: the command may have changed things in {result.where}")
    return ExecutorError(f"{what} in {result.where}" + (f": {tail}" if tail else "") + uploaded, state=state,
                         effect=Effect.UNTOUCHED if read_only else Effect.UNKNOWN)


async def _perform(deps: StepDeps, run: ActionRun, step: PlannedStep, book: UndoBook, note: Note) -> str:
    argv = [str(part) for part in step.args["command"]]  # a number parameter stays one element, as text
    if step.args.get("undo"):
        await book.keep(command=argv)  # before it runs: what its undo needs is there if it is cut short
    try:
        result = await _run(deps, step, argv)
    except ExecutorError as exc:
        if step.args.get("read_only"):
            exc.state, exc.effect = "unchanged: the command only reads", Effect.UNTOUCHED
        raise
    text = _text(result)
    uploaded = await _upload(deps, run, step, result, text)
    if result.exit_code is None:
        raise _failed(step, result, f"did not finish within {_budget(step.timeout):g} s ({result.stopped})", text,
                      uploaded)
    if result.exit_code != 0:
        raise _failed(step, result, f"exited {result.exit_code}", text, uploaded)
    tail = _tail(text)
    return f"exit 0 in {result.seconds:.1f} s" + (f": {tail}" if tail else "") + uploaded


async def _undo(deps: StepDeps, step: PlannedStep, data: dict[str, Any]) -> str:
    argv = [str(part) for part in step.args["undo"]]
    result = await _run(deps, step, argv)
    text = _text(result)
    if result.exit_code != 0:
        ended = "was cut at its timeout" if result.exit_code is None else f"exited {result.exit_code}"
        raise ExecutorError(f"the undo command {ended} in {result.where}: {_tail(text)}",
                            state=f"unknown: see {result.where}", effect=Effect.UNKNOWN)
    return f"ran `{_words(argv)}`: exit 0" + (f": {_tail(text)}" if text.strip() else "")


KIND = register(StepKind("exec", ExecStep, _MUTATING, _describe, _perform, undo=_undo,
                         can_undo=lambda step, data: bool(step.args.get("undo")),
                         undo_words=lambda step, data: f"run `{_words(step.args['undo'])}`",
                         step_traits=_traits))
