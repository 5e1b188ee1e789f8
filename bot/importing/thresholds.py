"""A script's comparison of a reading with a number (`if [ "$X" -gt 80 ]; then echo "WARNING…"`, awk's `$5 > 80`)
as a check's limit: which values are bad, at which level (by the script's own words), and how sure that is.

Not responsible for finding the reading (`checks`) nor for the check's other fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.importing.model import HIGH, CheckFinding, Sure, low, medium
from bot.importing.shell import Statement, Test

_GOOD = re.compile(r"✅|✔|\b(ok|healthy|success(ful)?|passed|normal|fine|recovered|responding)\b", re.IGNORECASE)
_CRITICAL = re.compile(r"\b(critical|crit)\b", re.IGNORECASE)
_WARNING = re.compile(r"⚠|\b(warn|warning)\b", re.IGNORECASE)
_ALARM = re.compile(r"❌|🚨|✗|\b(alert|fail|failed|failure|unhealthy)\b", re.IGNORECASE)  # bad whatever else is said
_BAD = re.compile(r"❌|🚨|✗|\b(alert|fail|failed|failure|error|down|corrupt(ed)?|high|exceed(ed|s)?|excessive|low|"
                  r"unhealthy|escalat\w*)\b", re.IGNORECASE)
_NEGATED = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}
_AWK = re.compile(r"(?:\$\d+|\$\d+\s*\+\s*0|int\(\$\d+\))\s*(?P<op>>=|<=|>|<)\s*(?P<value>\d+(?:\.\d+)?)\s*\{(?P<action>[^}]*)\}")


@dataclass(frozen=True)
class Limit:
    above: bool  # high values are bad (else low ones)
    level: str  # "warning" or "critical"
    value: float
    strict: bool  # the value itself is fine ("more than 80")
    sure: Sure = HIGH

    def levels(self) -> dict[str, Any]:
        out: dict[str, Any] = {self.level: _number(self.value)}
        if self.above and self.strict:
            out["strict"] = True
        if not self.above and not self.strict:
            out["strict"] = False
        return out


def from_test(test: Test) -> Limit | None:
    """The limit an `if` on a number says, or None when it compares no number or does not say which side is bad."""
    number = test.number
    if number is None or test.operator not in _NEGATED:
        return None
    bad_then, bad_else = _bad(test.then_text), _bad(test.else_text)
    sure = HIGH
    if bad_then and not bad_else:
        operator, words = test.operator, test.then_text
    elif bad_else and not bad_then:
        operator, words = _NEGATED[test.operator], test.else_text
    elif not bad_then and not bad_else and not test.else_text and _acts(test.then_body):
        operator, words = test.operator, test.then_text  # an action taken past the limit
        sure = low("the script acts past this value without saying it is bad")
    else:
        return None
    return _limit(operator, number, words, sure)


def from_awk(program: str) -> Limit | None:
    """awk's `$5 > 80 { print "ALERT…" }`: the fields past the value are reported."""
    match = _AWK.search(program)
    if match is None:
        return None
    return _limit(match["op"], float(match["value"]), match["action"], HIGH)


def _limit(operator: str, number: float, words: str, sure: Sure) -> Limit | None:
    level, said = _level(words)
    sure = sure.also(said)
    if operator in (">", ">="):
        return Limit(True, level, number, operator == ">", sure)
    if operator in ("<", "<="):
        return Limit(False, level, number, operator == "<", sure)
    if operator == "==" and number == 0:  # "is 0" is bad: nothing left
        return Limit(False, level, 0, False, sure)
    return None


def _acts(body: tuple[Statement, ...]) -> bool:
    """The branch does something (not only `echo`): the script acts past the value."""
    return any(s.commands and s.commands[0].program not in ("echo", "printf") for s in body) or any(
        not s.commands for s in body)


def _bad(text: str) -> bool:
    """A branch that reports a problem: alarm words, or words of trouble that no ✅ / "ok" turns into a report."""
    if _CRITICAL.search(text) or _WARNING.search(text) or _ALARM.search(text):
        return True
    return bool(_BAD.search(text)) and not _GOOD.search(text)


def _level(words: str) -> tuple[str, Sure]:
    if _CRITICAL.search(words):
        return "critical", HIGH
    if _WARNING.search(words):
        return "warning", HIGH
    found = _BAD.search(words)
    if found:
        return "critical", medium(f"the script says {found.group(0)!r}: read as critical")
    return "critical", low("the script does not say how bad: taken as critical")


def apply(finding: CheckFinding, limit: Limit) -> tuple[CheckFinding, str]:
    """The check with the limit set where its measure says, and "" — or the finding unchanged and why not."""
    measure = finding.measure
    if measure is None:
        return finding, "the check has no number this limit could apply to"
    check = {**finding.check}
    if measure.key == ("limits",):
        key = "above" if limit.above else "below"
        other = "below" if limit.above else "above"
        if other in check:
            return finding, f"the check already has a limit on {other}"
        check[key] = _merge(check.get(key), limit)
    elif not limit.above and measure.high_only:
        return finding, f"low values of {'.'.join(measure.key)} are never bad for this check"
    else:
        scaled = Limit(limit.above, limit.level, limit.value * measure.scale, limit.strict, limit.sure)
        if measure.key[0] == "fields":
            check["fields"] = {**check.get("fields", {}),
                               measure.key[1]: {("above" if limit.above else "below"): scaled.levels()}}
        elif len(measure.key) == 2:
            check[measure.key[0]] = {**check.get(measure.key[0], {}),
                                     measure.key[1]: _merge(check.get(measure.key[0], {}).get(measure.key[1]), scaled)}
        else:
            check[measure.key[0]] = _merge(check.get(measure.key[0]), scaled)
    return _with(finding, check, limit.sure), ""


def expectation(finding: CheckFinding, test: Test) -> tuple[CheckFinding, str]:
    """`[ "$STATUS" == "healthy" ]`: the field must have that value (either branch may be the good one)."""
    measure = finding.measure
    if measure is None or not measure.text or test.operator not in ("==", "!="):
        return finding, "the check cannot expect a value"
    value: Any = test.value
    if test.number is not None:
        value = _number(test.number)
    elif value in ("true", "false"):
        value = value == "true"
    good_then = bool(_GOOD.search(test.then_text)) or (bool(_bad(test.else_text)) and not _bad(test.then_text))
    good_else = bool(_GOOD.search(test.else_text)) or (bool(_bad(test.then_text)) and not _bad(test.else_text))
    if (test.operator == "==" and good_else and not good_then) or (test.operator == "!=" and good_then and not good_else):
        return finding, "the script says this value is the bad one: the check expects the good one"
    sure = HIGH if (good_then or good_else) else low("the script does not say which value is good")
    check = {**finding.check, "type": "http-json", "fields": {**finding.check.get("fields", {}), measure.key[1]: value}}
    return _with(finding, check, sure), ""


def _with(finding: CheckFinding, check: dict[str, Any], sure: Sure) -> CheckFinding:
    return CheckFinding(finding.service, check, finding.key, finding.sure.also(sure), finding.measure, True, "")


def _merge(levels: Any, limit: Limit) -> dict[str, Any]:
    merged = {**(levels or {}), **limit.levels()}
    warning, critical = merged.get("warning"), merged.get("critical")
    if warning is not None and critical is not None:
        wrong = warning > critical if limit.above else warning < critical
        if wrong:  # "warning above critical": the later comparison is the other level
            merged["warning"], merged["critical"] = critical, warning
    return merged


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value

