"""Thresholds (`above`, high is bad) and floors (`below`, low is bad), in memory: one level is enough, a threshold's
level is reached at its value, `strict: true` for "more than" (and its mirror on floors), what a reason names, and
how the catalog takes the single-level forms.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.catalog_loading import CatalogInvalid, parse_catalog
from bot.checks.base import Floor, Status, Thresholds, limit_note

OK, WARNING, CRITICAL = Status.OK, Status.WARNING, Status.CRITICAL


def grades(limits: Thresholds | Floor, *values: float) -> list[Status]:
    return [limits.grade(value) for value in values]


# --- thresholds ------------------------------------------------------------------------------------------------------


def test_a_threshold_level_is_reached_at_its_value() -> None:
    limits = Thresholds(warning=10, critical=20)
    assert grades(limits, 9.99, 10, 19.99, 20, 1e9) == [OK, WARNING, WARNING, CRITICAL, CRITICAL]


@pytest.mark.parametrize(("given", "expected"), [
    ({"critical": 1000}, [OK, OK, CRITICAL, CRITICAL]),  # never a warning
    ({"warning": 1000}, [OK, OK, WARNING, WARNING]),  # never critical, however high
])
def test_one_threshold_level_is_enough(given: dict[str, float], expected: list[Status]) -> None:
    assert grades(Thresholds.model_validate(given), 0, 999, 1000, 1e12) == expected


def test_strict_thresholds_are_reached_only_above_their_value() -> None:
    limits = Thresholds.model_validate({"warning": 10, "critical": 20, "strict": True})
    assert grades(limits, 10, 10.5, 20, 21) == [OK, WARNING, WARNING, CRITICAL]


def test_more_than_zero_is_strict_zero_and_a_plain_zero_is_refused_pointing_there() -> None:
    dead_letters = Thresholds.model_validate({"critical": 0, "strict": True})
    assert grades(dead_letters, 0, 1) == [OK, CRITICAL]
    with pytest.raises(ValidationError, match=r'critical 0 is reached by every value from 0 up; for "more than 0" add '
                                              r"`strict: true`"):
        Thresholds.model_validate({"critical": 0})


@pytest.mark.parametrize(("given", "problem"), [
    ({}, "give `warning`, `critical` or both"),
    ({"strict": True}, "give `warning`, `critical` or both"),
    ({"warning": 20, "critical": 10}, "warning (20) must not be above critical (10)"),
    ({"warning": -1}, "greater than or equal to 0"),
    ({"warning": 1, "above": 2}, "Extra inputs are not permitted"),
])
def test_threshold_shapes_that_are_refused(given: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        Thresholds.model_validate(given)


# --- floors ----------------------------------------------------------------------------------------------------------


def test_a_floor_level_is_the_lowest_value_still_fine() -> None:
    limits = Floor(warning=80, critical=50)
    assert grades(limits, 100, 80, 79.9, 50, 49.9, 0) == [OK, OK, WARNING, WARNING, CRITICAL, CRITICAL]


@pytest.mark.parametrize(("given", "expected"), [
    ({"critical": 1}, [OK, OK, CRITICAL]),
    ({"warning": 2}, [OK, WARNING, WARNING]),
])
def test_one_floor_level_is_enough(given: dict[str, float], expected: list[Status]) -> None:
    assert grades(Floor.model_validate(given), 2, 1, 0) == expected


def test_a_floor_that_is_not_strict_counts_the_level_itself() -> None:
    limits = Floor.model_validate({"warning": 2, "critical": 1, "strict": False})
    assert grades(limits, 3, 2, 1, 0) == [OK, WARNING, CRITICAL, CRITICAL]


def test_floor_levels_must_not_be_upside_down_or_missing() -> None:
    with pytest.raises(ValidationError, match="low values are the bad ones"):
        Floor(warning=1, critical=2)
    with pytest.raises(ValidationError, match="give `warning`, `critical` or both"):
        Floor.model_validate({})


# --- what a reason names ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("limits", "status", "note"), [
    (Thresholds(warning=10, critical=20), WARNING, " (limit 10 items)"),
    (Thresholds(warning=10, critical=20), CRITICAL, " (limit 20 items)"),
    (Thresholds(warning=10, critical=20), OK, ""),
    (Thresholds.model_validate({"critical": 0, "strict": True}), CRITICAL, " (limit: more than 0 items)"),
    (Floor(warning=2, critical=1), WARNING, " (minimum 2 items)"),
    (Floor.model_validate({"critical": 1, "strict": False}), CRITICAL, " (limit: 1 items or less)"),
    (Thresholds.model_validate({"critical": 5}), Status.ERROR, ""),  # an error names no limit
])
def test_the_limit_a_reason_names(limits: Thresholds | Floor, status: Status, note: str) -> None:
    assert limit_note(status, limits, " items") == note


def test_the_field_descriptions_say_where_a_level_is_reached() -> None:
    above = Thresholds.model_json_schema()["properties"]["strict"]["description"]
    below = Floor.model_json_schema()["properties"]["strict"]["description"]
    assert "a level is reached at its value" in above and '"more than"' in above
    assert "the level itself is fine" in below


# --- in a catalog ------------------------------------------------------------------------------------------------------

CATALOG = """
services:
  app:
    environment: staging
    checks:
{}
"""


@pytest.mark.parametrize("check", [
    "{type: sql, dsn_env: APP_DB_URL, query: 'SELECT 1', above: {critical: 1000}}",
    "{type: prometheus, url: 'http://p:9090', query: up, below: {warning: 1}}",
    "{type: redis, url: 'redis://r:6379/0', lists: {dead: {critical: 0, strict: true}}, memory_percent: {warning: 70}}",
    "{type: http-json, url: 'http://a/health', fields: {queue.depth: {above: {warning: 10}}}}",
    "{type: memcached, address: 'm:11211', hit_ratio_percent: {critical: 50}}",
])
def test_the_catalog_takes_single_level_and_strict_limits(check: str) -> None:
    parse_catalog(CATALOG.format(f"      - {check}"))


def test_a_single_percent_level_above_100_is_still_refused() -> None:
    with pytest.raises(CatalogInvalid, match="critical \\(150\\) is a percentage: it must not be above 100"):
        parse_catalog(CATALOG.format("      - {type: memcached, address: 'm:11211', hit_ratio_percent: {critical: 150}}"))
