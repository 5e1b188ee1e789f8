"""HTTP JSON check: fields of a health endpoint's JSON body, each compared to a value, a set of values or limits.

Requesting the URL is `bot.checks._http` (shared with the plain http check); this module judges the body.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.checks._http import BODY_LIMIT, ExpectStatus, HttpSource, Unreachable, fetch
from bot.checks.base import (
    CheckDeps,
    CheckSpec,
    Floor,
    Probe,
    Status,
    Thresholds,
    limit_note,
)

Scalar = str | bool | int | float | None
_MISSING = object()


class _Expectation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Equals(_Expectation):
    equals: Scalar


class OneOf(_Expectation):
    one_of: list[Scalar] = Field(min_length=1)


class Above(_Expectation):
    """A number where high is bad (a queue depth)."""

    above: Thresholds


class Below(_Expectation):
    """A number where low is bad (workers alive)."""

    below: Floor


Expectation = Equals | OneOf | Above | Below
_KINDS: dict[str, type[Expectation]] = {"equals": Equals, "one_of": OneOf, "above": Above, "below": Below}


class HttpJsonCheck(HttpSource, ExpectStatus, CheckSpec):
    """One request (no redirects, at most 1 MiB read); each of `fields` in the JSON body is compared and the worst
    wins, every failing field named with the value found and what was expected (`status is "degraded", expected
    "healthy"`). A missing field, or a body that is not JSON, is critical."""

    type: Literal["http-json"]
    fields: dict[str, Expectation] = Field(
        min_length=1, description="dotted path (integer segments index lists) -> value, {equals}, {one_of}, {above}, {below}"
    )

    @field_validator("fields", mode="before", json_schema_input_type=dict[str, Scalar | Expectation])
    @classmethod
    def _parse_fields(cls, value: object) -> object:
        # Parsed here rather than left to a pydantic union, so a mistake is reported once, at its path, in words
        # ("queue.depth: above: warning (5) must not be above critical (1)"), not once per union member.
        if not isinstance(value, dict):
            return value
        parsed: dict[str, Expectation] = {}
        for key, raw in value.items():
            path = str(key) if isinstance(key, int) else key  # YAML reads a bare `0:` key as a number
            parsed[path] = _expectation(path, raw)
        return parsed

    def default_label(self) -> str:
        return f"http-json {self.url.path or '/'}"

    async def probe(self, deps: CheckDeps) -> Probe:
        try:
            answer = await fetch(deps, self, limit=BODY_LIMIT)
        except Unreachable as exc:
            return Probe(Status.CRITICAL, exc.reason)
        findings: list[tuple[Status, str]] = []
        if answer.status not in self.expect_status:
            findings.append((Status.CRITICAL, f"HTTP {answer.status} (expected {self.expected()})"))
        if answer.truncated:
            return _verdict([*findings, (Status.CRITICAL, f"body is larger than {BODY_LIMIT >> 20} MiB, not judged")])
        try:
            document = json.loads(answer.body)
        except ValueError:
            said = "" if findings else f"HTTP {answer.status}, "  # the status is already named when it was wrong
            return _verdict([*findings, (Status.CRITICAL, f"{said}body is not JSON: {_snippet(answer.body)}")])
        judged = [judge(path, expectation, document) for path, expectation in self.fields.items()]
        findings += [(status, text) for status, text in judged if status is not Status.OK]
        if findings:
            return _verdict(findings)
        numbers = [text for status, text in judged if text]
        detail = f" ({', '.join(numbers)})" if numbers else ""
        count = len(self.fields)
        return Probe(Status.OK, f"HTTP {answer.status}, {count} field{'s' if count != 1 else ''} as expected{detail}")


def judge(path: str, expectation: Expectation, document: Any) -> tuple[Status, str]:
    """One field's status and what to say about it: the failure, or for a number within limits its value."""
    found = lookup(document, path)
    if found is _MISSING:
        return Status.CRITICAL, f"no field {path}"
    if isinstance(expectation, Equals):
        if _same(found, expectation.equals):
            return Status.OK, ""
        return Status.CRITICAL, f"{path} is {_show(found)}, expected {_show(expectation.equals)}"
    if isinstance(expectation, OneOf):
        if any(_same(found, allowed) for allowed in expectation.one_of):
            return Status.OK, ""
        return Status.CRITICAL, f"{path} is {_show(found)}, expected one of {', '.join(_show(v) for v in expectation.one_of)}"
    limits = expectation.above if isinstance(expectation, Above) else expectation.below
    if not _is_number(found) or math.isnan(found):
        return Status.CRITICAL, f"{path} is {_show(found)}, expected a number"
    status = limits.grade(float(found))
    if status is Status.OK:
        return status, f"{path} {_show(found)}"
    return status, f"{path} is {_show(found)}{limit_note(status, limits)}"


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted path; an integer segment indexes a list (a mapping's key "0" is still a key)."""
    node = document
    for segment in path.split("."):
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return _MISSING
    return node


def _expectation(path: object, raw: object) -> Expectation:
    if not isinstance(path, str) or not path or any(not segment for segment in path.split(".")):
        raise ValueError(f"{path!r} is not a dotted path (like `checks.database` or `workers.0.state`)")
    if isinstance(raw, list):  # pydantic reports a ValueError at the path; a TypeError would escape it
        raise ValueError(
            f"{path}: a list is not an expectation; to allow several values write {{one_of: [...]}}"
        )
    if not isinstance(raw, dict):
        raw = {"equals": raw}  # `status: healthy` is short for `status: {equals: healthy}`
    if len(raw) != 1 or next(iter(raw)) not in _KINDS:
        given = ", ".join(str(key) for key in raw) or "nothing"
        raise ValueError(f"{path}: expected a value or exactly one of equals, one_of, above, below (got {given})")
    try:
        return _KINDS[next(iter(raw))].model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"][0].lower() + error["msg"][1:]
        raise ValueError(f"{path}: {where}: {message}") from None


def _verdict(findings: list[tuple[Status, str]]) -> Probe:
    return Probe(Status.worst([status for status, _ in findings]), "; ".join(text for _, text in findings))


def _same(found: Any, expected: Any) -> bool:
    # JSON true is not 1 and 1 is not "1": compare the kind as well as the value (1 and 1.0 are both numbers).
    if isinstance(found, bool) or isinstance(expected, bool):
        return isinstance(found, bool) and isinstance(expected, bool) and found == expected
    if _is_number(found) and _is_number(expected):
        return bool(found == expected)
    return type(found) is type(expected) and bool(found == expected)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _show(value: Any) -> str:
    """A value as JSON would write it (strings quoted), cut short for a chat line."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    return text if len(text) <= 80 else text[:77] + "…"


def _snippet(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return "(empty)"
    return repr(text[:60] + ("…" if len(text) > 60 else ""))
