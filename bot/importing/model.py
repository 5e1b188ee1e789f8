"""What an import finds and what its draft holds: confidences, findings of one command (checks, backups, targets,
schedules, steps) and the assembled draft's services and runbooks.

Values only; finding them is `recognise` and its families, assembling them `assemble`, writing them `render`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from bot.importing.markdown import Procedure
from bot.importing.shell import Statement

Step = dict[str, Any]  # one catalog step as YAML data
Data = dict[str, Any]  # one catalog element (a check, a backup, a target) as YAML data
STACK = "stack"  # the service a compose project's whole-stack commands (`docker compose ps`, `logs`) are about
HOST = "host"  # the service a host's own readings (`df`, `free`) are about
EVERY_KUBERNETES_SERVICE = "*kubernetes*"  # `kubectl get pods -n ns`: each deployment of the namespace


class Confidence(Enum):
    HIGH = "high"  # taken as written
    MEDIUM = "medium"  # one guess, said why
    LOW = "low"  # several guesses, or a value the script does not give

    @property
    def rank(self) -> int:
        return {"high": 2, "medium": 1, "low": 0}[self.value]


@dataclass(frozen=True)
class Sure:
    """How sure the importer is of an element, and why not more."""

    level: Confidence = Confidence.HIGH
    why: tuple[str, ...] = ()

    def but(self, level: Confidence, why: str) -> Sure:
        lowest = level if level.rank < self.level.rank else self.level
        return Sure(lowest, (*self.why, why) if why and why not in self.why else self.why)

    def also(self, other: Sure) -> Sure:
        sure = self
        for why in other.why:
            sure = sure.but(other.level, why)
        return sure if other.why else sure.but(other.level, "")

    def render(self) -> str:
        return self.level.value + (": " + "; ".join(self.why) if self.why and self.level is not Confidence.HIGH else "")


HIGH = Sure()


def medium(why: str) -> Sure:
    return Sure(Confidence.MEDIUM, (why,))


def low(why: str) -> Sure:
    return Sure(Confidence.LOW, (why,))


@dataclass(frozen=True)
class Lines:
    source: str
    first: int
    last: int

    def __str__(self) -> str:
        return f"{self.source}:{self.first}" if self.first == self.last else f"{self.source}:{self.first}-{self.last}"


@dataclass(frozen=True)
class Measure:
    """Where a threshold the script compares the command's output with goes in the check."""

    key: tuple[str, ...]  # ("usage_percent",), ("lists", "queue:x"), ("fields", "status"); ("limits",): above/below
    high_only: bool = True  # the key takes Thresholds only (high is bad); ("limits",) takes either
    scale: float = 1.0  # the check's unit per the script's (seconds → ms: 1000)
    text: bool = False  # an equality with a word is the expectation itself (http-json fields)


@dataclass(frozen=True)
class CheckFinding:
    service: str
    check: Data  # the check's YAML: type, name, and what the command says
    key: tuple[Any, ...]  # the same check found twice is one check
    sure: Sure = HIGH
    measure: Measure | None = None
    complete: bool = True  # False: it needs a value the script does not give (a limit, a queue's name)
    missing: str = ""  # …which one


@dataclass(frozen=True)
class BackupFinding:
    service: str
    backup: Data  # type, directory, dsn_env / url_env / paths
    sure: Sure = HIGH


@dataclass(frozen=True)
class RetentionFinding:
    directory: str  # `find DIR … -mtime +N -delete`: backups under DIR are kept N days
    days: int
    sure: Sure = HIGH


@dataclass(frozen=True)
class CronFinding:
    cron: str  # five fields
    command: str  # what it runs, as written
    line: int
    sure: Sure = HIGH


@dataclass(frozen=True)
class ServicePart:
    """Another block of a service the command says something about (`maintenance:` from a ConfigMap patch)."""

    service: str
    key: str
    data: Data
    sure: Sure = HIGH


@dataclass(frozen=True)
class TargetHint:
    service: str
    target: Data
    sure: Sure = HIGH


@dataclass(frozen=True)
class Found:
    """What one command is: runbook steps and catalog elements, or a manual step's reason."""

    steps: tuple[Step, ...] = ()
    manual: str | None = None  # why it is manual; None: recognised
    decisions: tuple[str, ...] = ()
    parameters: dict[str, Data] = field(default_factory=dict)
    session: bool = False  # it opens an interactive session: what follows in its block is typed into it
    checks: tuple[CheckFinding, ...] = ()
    backups: tuple[BackupFinding, ...] = ()
    retention: tuple[RetentionFinding, ...] = ()
    crons: tuple[CronFinding, ...] = ()
    targets: tuple[TargetHint, ...] = ()
    parts: tuple[ServicePart, ...] = ()
    sure: Sure = HIGH
    consumed: str = ""  # it is part of another element (a threshold, an outcome test): which, in words

    def plus(self, other: Found) -> Found:
        """Both: steps in order, elements merged (the manual reason of either wins)."""
        return replace(self, steps=self.steps + other.steps, manual=self.manual or other.manual,
                       decisions=self.decisions + other.decisions, parameters={**self.parameters, **other.parameters},
                       checks=self.checks + other.checks, backups=self.backups + other.backups,
                       retention=self.retention + other.retention, crons=self.crons + other.crons,
                       targets=self.targets + other.targets, parts=self.parts + other.parts,
                       sure=self.sure.also(other.sure))


def manual(why: str, *decisions: str, targets: tuple[TargetHint, ...] = ()) -> Found:
    return Found(manual=why, decisions=decisions, targets=targets)


@dataclass(frozen=True)
class Mapped:
    """What one statement became, where it was and how it was written (literal secrets replaced by `$NAME`)."""

    lines: Lines
    text: str
    comment: str
    found: Found
    control: bool = False  # a test or a variable, not a command: not counted as one
    statement: Statement | None = None

    @property
    def first_line(self) -> int:
        return self.lines.first

    @property
    def last_line(self) -> int:
        return self.lines.last

    @property
    def manual(self) -> str | None:
        return self.found.manual

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.found.steps

    @property
    def services(self) -> set[str]:
        return {step["service"] for step in self.steps if isinstance(step.get("service"), str)}

    @property
    def elements(self) -> bool:
        """It became something a catalog holds: a check, a backup, a schedule, a step that is not manual."""
        found = self.found
        return found.manual is None and bool(found.checks or found.backups or found.crons or found.consumed
                                             or found.retention
                                             or any(step["kind"] != "manual" for step in found.steps))


@dataclass(frozen=True)
class Reading:
    """One procedure and the items its blocks became, in order."""

    procedure: Procedure
    items: tuple[Mapped, ...]


# --- the draft ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlacedStep:
    step: Step
    lines: Lines
    note: str  # "recognised: …" or "manual: why"
    sure: Sure = HIGH
    text: str = ""  # the command(s) as written


@dataclass(frozen=True)
class ImportedRunbook:
    name: str
    procedure: Procedure
    mapped: tuple[Mapped, ...]
    services: tuple[str, ...]
    steps: tuple[PlacedStep, ...]
    parameters: dict[str, Data] = field(default_factory=dict)
    schedule: CronFinding | None = None
    schedule_note: str = ""  # why the schedule is left for a person to switch on


@dataclass(frozen=True)
class PlacedCheck:
    check: Data
    lines: tuple[Lines, ...]
    sure: Sure
    complete: bool = True
    missing: str = ""


@dataclass(frozen=True)
class DraftService:
    name: str
    lines: Lines  # where it is first named
    target: TargetHint | None = None
    target_lines: Lines | None = None
    checks: tuple[PlacedCheck, ...] = ()
    backup: BackupFinding | None = None
    backup_lines: tuple[Lines, ...] = ()
    retention: RetentionFinding | None = None
    schedule: CronFinding | None = None
    parts: tuple[ServicePart, ...] = ()


@dataclass(frozen=True)
class ProcedureResult:
    procedure: Procedure
    commands: int  # statements that are commands (not tests, not variables)
    recognised: int  # …that became elements
    runbook: str | None  # the runbook it became
    checks: int
    backups: int
    mapped: tuple[Mapped, ...] = ()

    @property
    def status(self) -> str:
        if self.commands and self.recognised == self.commands:
            return "recognised"
        return "partly recognised" if self.recognised or self.checks or self.backups else "manual"


@dataclass(frozen=True)
class Draft:
    source: str  # the file's name, as provenance comments cite it
    runbooks: tuple[ImportedRunbook, ...]
    skipped: tuple[str, ...]  # what was not imported, and why
    services: tuple[DraftService, ...] = ()
    procedures: tuple[ProcedureResult, ...] = ()
    notes: tuple[str, ...] = ()  # what the draft as a whole leaves to a person

    @property
    def mapped(self) -> list[Mapped]:
        return [item for result in self.procedures for item in result.mapped]
