"""The shapes of what Slack sends, as small pydantic models every listener validates its payload with first.

A payload that does not fit (a bug, or Slack changing a field) is answered plainly and audited, never a traceback.
Not responsible for what the values mean: ids and names are looked up by the core.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import OpsbotError, StaleButton
from bot.ids import parse_id

T = TypeVar("T", bound=BaseModel)


class MalformedPayload(OpsbotError):
    """Slack sent something opsbot cannot read: which fields, never their values."""

    def __init__(self, what: str, error: ValidationError | None = None) -> None:
        self.fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()})[:5] if error else []
        where = f" ({', '.join(self.fields)})" if self.fields else ""
        super().__init__(f"opsbot could not read this {what}{where}: it is not in the form Slack sends. Nothing was done; "
                         "if this keeps happening, tell whoever runs opsbot.")


# Where Slack takes an answer: always an https URL of Slack's (http for the fake Slack the tests and `opsbot dev` run).
URL = r"^https?://[^\s/]+/\S*$"
_URL = re.compile(URL)


class _Shape(BaseModel):
    # Slack adds fields over time: unknown ones are ignored, known ones must have the type Slack documents.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Ref(_Shape):
    id: str = Field(min_length=1)


class MaybeRef(_Shape):
    id: str | None = None


class Option(_Shape):
    value: str


class Element(_Shape):
    action_id: str
    value: str | None = None
    selected_option: Option | None = None

    @property
    def chosen(self) -> str:
        """A button's value, or the chosen option's of a menu or select."""
        return self.value or (self.selected_option.value if self.selected_option else "") or ""


class Click(_Shape):
    """A block_actions payload from a message: a button, a menu, a select."""

    user: Ref
    channel: MaybeRef | None = None
    response_url: str = Field(pattern=URL)
    trigger_id: str = Field(min_length=1)
    actions: list[Element] = Field(min_length=1)


class Input(_Shape):
    """One input of a submitted form; the parts opsbot reads."""

    value: str | None = None
    selected_option: Option | None = None
    selected_options: list[Option] | None = None


class State(_Shape):
    values: dict[str, dict[str, Input]] = {}


class View(_Shape):
    callback_id: str
    private_metadata: str = ""
    state: State = State()


class Submission(_Shape):
    """A view_submission payload: a form sent."""

    user: Ref
    view: View


class Command(_Shape):
    """A slash command (form-encoded: every value is text)."""

    command: str
    user_id: str = Field(min_length=1)
    channel_id: str | None = None
    response_url: str = Field(pattern=URL)
    trigger_id: str | None = None
    text: str = ""


class Mention(_Shape):
    user: str | None = None
    channel: str = Field(min_length=1)
    text: str = ""
    ts: str | None = None
    thread_ts: str | None = None


class ReactionItem(_Shape):
    type: str
    channel: str | None = None
    ts: str | None = None


class Reaction(_Shape):
    type: str
    user: str = ""
    reaction: str = ""
    item: ReactionItem


class RunForm(_Shape):
    """The private metadata of the reason and deny forms of a run."""

    run_id: int = Field(ge=0, lt=2**63)
    channel: str | None = None
    response_url: str | None = Field(default=None, pattern=URL)


class RunbookForm(_Shape):
    """The private metadata of a runbook's parameters form."""

    runbook: str
    channel: str | None = None
    reason: str | None = None
    response_url: str | None = Field(default=None, pattern=URL)


def read(model: type[T], data: Any, what: str) -> T:
    """`data` as `model`, or MalformedPayload naming the fields that do not fit."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedPayload(what, exc) from None


def read_json(model: type[T], text: str, what: str) -> T:
    try:
        return model.model_validate_json(text or "{}")
    except ValidationError as exc:
        raise MalformedPayload(what, exc) from None


def text_of(value: Any) -> str | None:
    """A field's text when it is text (used before validation, to know where to answer)."""
    return value if isinstance(value, str) and value else None


def url_of(value: Any) -> str | None:
    """A response_url when it is one (used before validation, to know where to answer)."""
    return value if isinstance(value, str) and _URL.match(value) else None


def ref_of(value: Any) -> str | None:
    return text_of(value.get("id")) if isinstance(value, dict) else None


def id_of(value: str, what: str = "ask again") -> int:
    """The id a button or menu value carries; anything else is a control from an older message."""
    number = parse_id(value)
    if number is None:
        raise StaleButton(what)
    return number


def id_and_part(value: str, what: str = "ask again") -> tuple[int, str]:
    """`<id>:<part>` (an incident's id and a severity, status, role or page), both present."""
    first, sep, rest = value.partition(":")
    number = parse_id(first)
    if number is None or not sep or not rest:
        raise StaleButton(what)
    return number, rest
