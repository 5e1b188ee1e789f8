"""`opsbot import --merge`: a draft proposed into a catalog a person wrote (their lines kept byte for byte, new
elements added, differing ones reported), and a re-import of an edited runbook (changes proposed only where nobody
edited the imported element since)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.catalog_loading import parse_catalog
from bot.cli import main
from bot.importing.diffs import catalog_diff, describe
from bot.importing.draft import import_runbook, render
from bot.importing.elements import show
from bot.importing.merge import Merged, Outcome, Unmergeable, merge
from bot.importing.proposal import propose

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

CATALOG = """\
version: 1
# Our services: written by hand.
services:
  api:
    environment: production   # the real one
    target: {type: docker, container: api}
    checks:
      - {type: http, name: health, url: "http://api:8080/health"}
    # api ends here
  web:
    environment: staging

runbooks:
  restore-db:
    description: Put the database back
    services: [api]
    steps:
      - {kind: notify, text: "restoring"}
# end of file
"""

DRAFT = """\
# Imported from ops.md by `opsbot import`: review every step before merging.
services:
  # ops.md:3-9 confidence: high
  api:
    environment: production
    checks:
      - {type: http, name: health, url: "http://localhost:8080/health"}  # ops.md:5 confidence: high
      - {type: disk, paths: [/], usage_percent: {critical: 90}}  # ops.md:7 confidence: high
  # ops.md:30-52 confidence: medium
  db:
    environment: production
    checks:
      - {type: postgres, dsn_env: DB_DSN}  # ops.md:31 confidence: high
    backup: {type: postgres, dsn_env: DB_DSN, directory: /var/backups/db, retention_days: 7}  # ops.md:50-52
runbooks:
  # ops.md:20 'Restore the database': 1 of 1 steps recognised
  restore-db:
    description: "Imported from Restore the database"
    services: [api]
    steps:
      - {kind: notify, text: "restoring from the runbook"}  # ops.md:22 recognised
  # ops.md:40 'Restart': 1 of 2 steps recognised
  restart-api:
    description: "Imported from Restart"
    services: [api]
    steps:
      - {kind: notify, text: "restarting"}  # ops.md:42 recognised
      - kind: manual  # ops.md:43-44 manual: a session
        instructions: |-
          ssh box
          sudo systemctl restart api
"""


def _paths(merged: Merged, outcome: Outcome) -> list[str]:
    return [show(finding.path) for finding in merged.of(outcome)]


def _kept_in_order(before: str, after: str) -> bool:
    """Every line of `before` is in `after`, unchanged and in the same order (lines were only added around them)."""
    remaining = iter(after.splitlines(keepends=True))
    return all(any(line == candidate for candidate in remaining) for line in before.splitlines(keepends=True))


def _reimported(first: Merged, draft: str) -> Merged:
    return merge(first.text, draft, "ops.md")


def test_new_services_checks_backups_and_runbooks_are_added_and_every_line_of_yours_stays() -> None:
    merged = merge(CATALOG, DRAFT, "ops.md")

    assert _kept_in_order(CATALOG, merged.text)
    assert _paths(merged, Outcome.ADDED) == ["services.api.checks[disk /]", "services.db",
                                             "services.db.checks[postgres]", "services.db.backup",
                                             "runbooks.restart-api"]
    catalog = parse_catalog(merged.text)
    assert [check.label for check in catalog.services["api"].checks] == ["health", "disk /"]
    assert catalog.services["db"].backup is not None and catalog.services["db"].backup.retention_days == 7
    assert [step.kind for step in catalog.runbooks["restart-api"].steps] == ["notify", "manual"]
    text = merged.text
    # Each lands at the end of the mapping or list it belongs to, with its provenance comment.
    assert text.index("disk, paths") < text.index("# api ends here") < text.index("  web:") < text.index("  db:")
    assert text.index("  db:") < text.index("\nrunbooks:") < text.index("  restart-api:")
    assert text.index("  restart-api:") < text.index("# end of file")
    assert "      - {type: disk, paths: [/], usage_percent: {critical: 90}}  # ops.md:7 confidence: high\n" in text
    assert "  # ops.md:40 'Restart': 1 of 2 steps recognised\n" in text


def test_an_element_you_have_that_differs_is_kept_and_reported_with_its_differences() -> None:
    merged = merge(CATALOG, DRAFT, "ops.md")

    assert _paths(merged, Outcome.KEPT_YOURS) == ["services.api.checks[health]", "runbooks.restore-db"]
    assert yaml.safe_load(merged.text)["runbooks"]["restore-db"]["steps"] == [{"kind": "notify", "text": "restoring"}]
    words = describe(merged, "opsbot.yml")
    assert "  runbooks.restore-db exists and differs: kept yours\n" in words
    assert "      -  text: restoring\n" in words and "      +  text: restoring from the runbook\n" in words
    assert "      -  description: Put the database back\n" not in words  # a diff of values, its lines as dumped
    assert "      -description: Put the database back\n" in words
    assert words.startswith("--merge opsbot.yml: 5 added, 2 kept yours\n")


def test_the_proposal_is_a_unified_diff_of_the_catalog_that_only_adds_lines() -> None:
    merged = merge(CATALOG, DRAFT, "ops.md")
    diff = catalog_diff(merged, "opsbot.yml")

    assert diff.startswith("--- opsbot.yml\n+++ opsbot.yml\n@@ ")
    changed = [line for line in diff.splitlines()[2:] if line[:1] in "+-"]
    assert changed and all(line.startswith("+") for line in changed)
    assert catalog_diff(merge(merged.text, DRAFT, "ops.md"), "opsbot.yml") == ""


def test_a_section_the_catalog_lacks_is_appended_and_an_empty_list_gets_its_items_below_its_key() -> None:
    catalog = "services:\n  api:\n    environment: production\n    checks: []   # none yet\n  db:\n    environment: production\n"
    merged = merge(catalog, DRAFT, "ops.md")

    assert merged.text.startswith("services:\n  api:\n    environment: production\n    checks:   # none yet\n"
                                  "      # opsbot import: ops.md ")
    assert "\n\n# Imported from ops.md" not in merged.text  # the draft's file comment is not copied
    assert "\n\nrunbooks:\n" in merged.text
    loaded = parse_catalog(merged.text)
    assert [check.label for check in loaded.services["api"].checks] == ["health", "disk /"]
    assert sorted(loaded.runbooks) == ["restart-api", "restore-db"]
    # db is yours: its own keys stay as you wrote them, the runbook's check and backup are added to it.
    assert merged.text.startswith(catalog[:catalog.index("  db:")].replace("checks: []", "checks:"))
    assert merged.text.split("  db:\n")[1].startswith("    environment: production\n    checks:\n"
                                                      "      # opsbot import: ops.md ")
    assert [check.label for check in loaded.services["db"].checks] == ["postgres"]
    assert loaded.services["db"].backup is not None
    assert _paths(merged, Outcome.KEPT_YOURS) == []  # same own keys (environment): nothing differs


def test_a_place_written_on_one_line_is_left_alone_and_its_lines_are_given_to_add_by_hand() -> None:
    catalog = ("services:\n  api: {environment: production, checks: [{type: http, name: health, "
               "url: 'http://localhost:8080/health'}]}\nrunbooks: {}\n")
    merged = merge(catalog, DRAFT, "ops.md")

    assert _paths(merged, Outcome.BY_HAND) == ["services.api.checks[disk /]"]
    assert merged.of(Outcome.BY_HAND)[0].lines == (
        "      - {type: disk, paths: [/], usage_percent: {critical: 90}}  # ops.md:7 confidence: high",)
    assert merged.text.startswith(catalog.splitlines(keepends=True)[0] + catalog.splitlines(keepends=True)[1])
    assert "runbooks:\n  # ops.md:20" in merged.text  # `{}` alone is replaced by the runbooks under the key
    assert "add it by hand" in describe(merged, "opsbot.yml")
    parse_catalog(merged.text)


def test_windows_line_breaks_and_a_missing_final_newline_are_kept() -> None:
    catalog = "services:\r\n  api:\r\n    environment: production\r\n    checks: []"
    merged = merge(catalog, DRAFT, "ops.md")

    assert merged.text.startswith("services:\r\n  api:\r\n    environment: production\r\n    checks:\r\n"
                                  "      # opsbot import: ops.md ")
    assert "\n" not in merged.text.replace("\r\n", "")
    parse_catalog(merged.text)


def test_an_alias_or_merge_key_in_the_catalog_is_compared_by_value_and_never_written_into() -> None:
    catalog = ("x-base: &base {environment: production}\nservices:\n  api:\n    <<: *base\n    checks:\n"
               "      - {type: http, name: health, url: 'http://localhost:8080/health'}\n  db: *base\n")
    merged = merge(catalog, DRAFT, "ops.md")

    assert _kept_in_order(catalog, merged.text)
    assert _paths(merged, Outcome.BY_HAND) == ["services.db.checks", "services.db.backup"]  # db: the anchor's
    assert "services.api.checks[disk /]" in _paths(merged, Outcome.ADDED)
    assert yaml.safe_load(merged.text)["services"]["db"] == {"environment": "production"}


def test_your_approval_policy_is_never_mixed_with_the_drafts_and_a_missing_one_is_added() -> None:
    policy = "approvals:\n  environments:\n    production:\n      deploy: {approvals: 2}\n"
    draft = ("approvals:\n  environments:\n    production:\n      default: {approvals: 1}\n"
             "    staging:\n      default: {approvals: 1}\n")

    kept = merge(policy + CATALOG, draft, "ops.md")
    assert kept.text == policy + CATALOG
    assert _paths(kept, Outcome.KEPT_YOURS) == ["approvals"]
    added = merge(CATALOG, draft, "ops.md")
    assert yaml.safe_load(added.text)["approvals"] == yaml.safe_load(draft)["approvals"]
    assert _paths(added, Outcome.ADDED) == ["approvals"]


def test_a_catalog_that_is_not_yaml_is_refused_with_its_line() -> None:
    with pytest.raises(Unmergeable) as refused:
        merge("services:\n  api: [\n", DRAFT, "ops.md", "opsbot.yml")
    assert str(refused.value).startswith("opsbot.yml:3: not valid YAML")
    with pytest.raises(Unmergeable, match="top level must be a mapping"):
        merge("- a\n- b\n", DRAFT, "ops.md", "opsbot.yml")


def test_an_empty_catalog_takes_the_whole_draft() -> None:
    merged = merge("# to be written\n", DRAFT, "ops.md")

    assert merged.text.startswith("# to be written\n\n")
    assert yaml.safe_load(merged.text) == yaml.safe_load(DRAFT)


# --- re-import ---------------------------------------------------------------------------------------------------

EDITED_RUNBOOK = (DRAFT.replace('text: "restarting"', 'text: "restarting now"')
                  .replace("usage_percent: {critical: 90}", "usage_percent: {critical: 95}")
                  .replace("environment: production\n    checks:\n      - {type: postgres",
                           "environment: staging\n    checks:\n      - {type: postgres"))


def test_reimporting_the_same_runbook_finds_every_element_unchanged_and_proposes_nothing() -> None:
    first = merge(CATALOG, DRAFT, "ops.md")
    again = _reimported(first, DRAFT)

    assert again.text == first.text
    assert _paths(again, Outcome.UNCHANGED) == ["services.api.checks[disk /]", "services.db",
                                                "services.db.checks[postgres]", "services.db.backup",
                                                "runbooks.restart-api"]
    assert "re-import of ops.md: 5 unchanged" in describe(again, "opsbot.yml")


def test_reimporting_an_edited_runbook_updates_the_elements_nobody_edited_since_the_import() -> None:
    first = merge(CATALOG, DRAFT, "ops.md")
    again = _reimported(first, EDITED_RUNBOOK)

    assert _paths(again, Outcome.UPDATED) == ["services.api.checks[disk /]", "services.db", "runbooks.restart-api"]
    catalog = parse_catalog(again.text)
    assert catalog.runbooks["restart-api"].steps[0].text == "restarting now"  # type: ignore[union-attr]
    assert catalog.services["db"].environment == "staging"
    assert catalog.services["api"].checks[1].usage_percent.critical == 95  # type: ignore[union-attr]
    assert catalog.runbooks["restore-db"].description == "Put the database back"  # yours: still kept
    words = describe(again, "opsbot.yml")
    assert "  runbooks.restart-api changed in ops.md: updated (not edited since the import)\n" in words
    assert "      -  text: restarting\n      +  text: restarting now\n" in words
    # The update is itself an import: a third run finds it unchanged.
    assert _reimported(again, EDITED_RUNBOOK).text == again.text


def test_reimporting_reports_but_never_changes_an_element_someone_edited_even_by_a_comment() -> None:
    first = merge(CATALOG, DRAFT, "ops.md")
    edited = first.text.replace("      - {kind: notify, text: \"restarting\"}",
                                "      # say it in #ops first\n      - {kind: notify, text: \"restarting\"}")
    edited = edited.replace("{type: disk, paths: [/], usage_percent: {critical: 90}}",
                            "{type: disk, paths: [/], usage_percent: {critical: 85}}")
    again = _reimported(merge(edited, DRAFT, "ops.md"), EDITED_RUNBOOK)

    assert _paths(again, Outcome.EDITED) == ["services.api.checks[disk /]", "runbooks.restart-api"]
    assert "      # say it in #ops first\n      - {kind: notify, text: \"restarting\"}" in again.text
    assert "usage_percent: {critical: 85}" in again.text
    assert _paths(again, Outcome.UPDATED) == ["services.db"]
    assert ("  runbooks.restart-api changed in ops.md, but was edited since the import: kept yours\n"
            in describe(again, "opsbot.yml"))


def test_a_service_is_updated_key_by_key_so_its_edited_checks_stay() -> None:
    first = merge(CATALOG, DRAFT, "ops.md")
    edited = first.text.replace("{type: postgres, dsn_env: DB_DSN}", "{type: postgres, dsn_env: DB_DSN, timeout: 9}")
    changed = EDITED_RUNBOOK.replace("{type: postgres, dsn_env: DB_DSN}", "{type: postgres, dsn_env: PG_DSN}")
    again = _reimported(merge(edited, DRAFT, "ops.md"), changed)

    assert _paths(again, Outcome.UPDATED) == ["services.api.checks[disk /]", "services.db", "runbooks.restart-api"]
    assert _paths(again, Outcome.EDITED) == ["services.db.checks[postgres]"]
    db = parse_catalog(again.text).services["db"]
    assert db.environment == "staging" and db.checks[0].timeout == 9


def test_elements_gone_from_the_runbook_are_removed_unless_edited_and_an_emptied_list_is_written_empty() -> None:
    first = merge(CATALOG, DRAFT, "ops.md")
    edited = first.text.replace("sudo systemctl restart api", "sudo systemctl restart api.service")
    without = (DRAFT.replace("      - {type: postgres, dsn_env: DB_DSN}  # ops.md:31 confidence: high\n", "")
               .replace("    checks:\n    backup:", "    backup:"))
    without = without[:without.index("  # ops.md:40 'Restart'")]
    again = _reimported(merge(edited, DRAFT, "ops.md"), without)

    assert _paths(again, Outcome.REMOVED) == ["services.db.checks[postgres]"]
    assert _paths(again, Outcome.KEPT_REMOVED) == ["runbooks.restart-api"]
    catalog = parse_catalog(again.text)
    assert catalog.services["db"].checks == [] and "restart-api" in catalog.runbooks
    assert again.text.split("  db:\n")[1].startswith("    environment: production\n    checks: []\n    # opsbot")
    words = describe(again, "opsbot.yml")
    assert "  services.db.checks[postgres] is no longer in ops.md: removed (not edited since the import)\n" in words
    assert "  runbooks.restart-api is no longer in ops.md, but was edited since the import: kept\n" in words


@pytest.mark.parametrize(("old", "new"), [
    ("    checks:\n      # opsbot import", "    checks:  # page the DBA before touching these\n      # opsbot import"),
    ("{type: postgres, dsn_env: DB_DSN}  # ops.md:31 confidence: high\n",
     "{type: postgres, dsn_env: DB_DSN}  # ops.md:31 confidence: high\n      # page the DBA before touching these\n"),
])
def test_a_comment_written_among_an_imported_services_checks_keeps_the_service_when_the_runbook_drops_it(
        old: str, new: str) -> None:
    first = merge(CATALOG, DRAFT, "ops.md")
    edited = first.text.replace(old, new, 1)
    assert edited != first.text
    without_db = DRAFT[:DRAFT.index("  # ops.md:30-52")] + DRAFT[DRAFT.index("runbooks:"):]
    again = _reimported(merge(edited, DRAFT, "ops.md"), without_db)

    assert _paths(again, Outcome.KEPT_REMOVED) == ["services.db"]
    assert "# page the DBA before touching these\n" in again.text
    assert "    environment: production\n    checks:" in again.text.split("  db:\n")[1]


def test_a_service_whose_checks_the_runbook_empties_and_fills_again_still_counts_as_not_edited() -> None:
    first = merge(CATALOG, DRAFT, "ops.md")
    no_db_checks = (DRAFT.replace("      - {type: postgres, dsn_env: DB_DSN}  # ops.md:31 confidence: high\n", "")
                    .replace("    checks:\n    backup:", "    backup:"))
    emptied = _reimported(first, no_db_checks)
    assert "    checks: []\n" in emptied.text
    filled = _reimported(emptied, DRAFT)
    assert _paths(filled, Outcome.ADDED) == ["services.db.checks[postgres]"]
    without_db = DRAFT[:DRAFT.index("  # ops.md:30-52")] + DRAFT[DRAFT.index("runbooks:"):]
    assert "services.db" in _paths(_reimported(filled, without_db), Outcome.REMOVED)


def test_another_runbooks_elements_are_never_updated_nor_removed() -> None:
    first = merge(CATALOG, DRAFT, "ops.md")
    again = merge(first.text, EDITED_RUNBOOK.replace("ops.md", "other.md"), "other.md")

    assert again.of(Outcome.UPDATED, Outcome.REMOVED, Outcome.UNCHANGED) == []
    assert "runbooks.restart-api" in _paths(again, Outcome.KEPT_YOURS)
    assert _kept_in_order(first.text, again.text)


def test_an_element_copied_by_hand_without_a_stamp_counts_as_edited() -> None:
    catalog = CATALOG + DRAFT[DRAFT.index("  # ops.md:40 'Restart'"):]
    again = merge(catalog, EDITED_RUNBOOK, "ops.md")

    assert "runbooks.restart-api" in _paths(again, Outcome.EDITED)
    assert 'text: "restarting"}' in again.text


# --- the real importer and the command -------------------------------------------------------------------------

RUNBOOK = """# Payments runbook

## Restart payments
```bash
# Restart the payments app
docker compose restart payments
sleep 5
```

## Look at the box
```bash
ssh ops@payments-1
sudo journalctl -u payments --since "1 hour ago"
```
"""


def _demo() -> str:
    # `opsbot dev` fills these in before loading (playground/dev.py); here any address and folder will do.
    return ((EXAMPLES / "demo.yml").read_text(encoding="utf-8")
            .replace("${DEMO_URL}", "http://127.0.0.1:9").replace("${DEMO_DIR}", "/tmp/demo"))


def test_the_real_importers_draft_merges_into_the_demo_catalog_and_reimports() -> None:
    demo = _demo()
    draft = render(import_runbook(RUNBOOK, "payments.md", ("payments",)))
    merged = merge(demo, draft, "payments.md")

    assert _kept_in_order(demo, merged.text)
    added = _paths(merged, Outcome.ADDED)
    assert "runbooks.restart-payments" in added and "runbooks.look-at-the-box" in added
    catalog = parse_catalog(merged.text)
    assert [step.kind for step in catalog.runbooks["restart-payments"].steps][:2] == ["restart", "wait"]
    assert catalog.runbooks["deploy-payments"] == parse_catalog(demo).runbooks["deploy-payments"]

    edited = RUNBOOK.replace("sleep 5", "sleep 20")
    again = merge(merged.text, render(import_runbook(edited, "payments.md", ("payments",))), "payments.md")
    assert _paths(again, Outcome.UPDATED) == ["runbooks.restart-payments"]
    assert "runbooks.look-at-the-box" in _paths(again, Outcome.UNCHANGED)
    assert parse_catalog(again.text).runbooks["restart-payments"].steps[1].seconds == 20  # type: ignore[union-attr]


def test_the_command_prints_the_diff_and_the_report_and_never_writes_the_catalog(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runbook, catalog = tmp_path / "payments.md", tmp_path / "opsbot.yml"
    runbook.write_text(RUNBOOK, encoding="utf-8")
    catalog.write_text(_demo(), encoding="utf-8")

    assert main(["import", str(runbook), "--service", "payments", "--merge", str(catalog)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"--- {catalog}\n+++ {catalog}\n@@ ")
    assert "+  restart-payments:\n" in out
    assert f"--merge {catalog}: " in err and "  added runbooks.restart-payments\n" in err
    assert catalog.read_text(encoding="utf-8") == _demo()

    diff = tmp_path / "import.diff"
    assert main(["import", str(runbook), "--service", "payments", "--merge", str(catalog), "-o", str(diff)]) == 0
    assert diff.read_text(encoding="utf-8") == out and capsys.readouterr().out == ""


def test_the_command_names_a_catalog_it_cannot_merge_into(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runbook, catalog = tmp_path / "payments.md", tmp_path / "opsbot.yml"
    runbook.write_text(RUNBOOK, encoding="utf-8")
    catalog.write_text("services: [\n", encoding="utf-8")

    assert main(["import", str(runbook), "--service", "payments", "--merge", str(catalog)]) == 2
    assert f"opsbot: {catalog}:2: not valid YAML" in capsys.readouterr().err
    assert main(["import", str(runbook), "--merge", str(tmp_path / "missing.yml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_a_merge_that_would_not_load_is_said_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = tmp_path / "opsbot.yml"
    catalog.write_text(CATALOG, encoding="utf-8")
    draft = ("runbooks:\n  # ops.md:3\n  restart-cache:\n    services: [cache]\n    steps:\n"
             "      - {kind: restart, service: cache}\n")

    assert propose(draft, "ops.md", catalog, None) == 1
    out, err = capsys.readouterr()
    assert "+  restart-cache:" in out
    assert "the merged catalog does not load" in err and "runbooks.restart-cache" in err
    assert catalog.read_text(encoding="utf-8") == CATALOG


def test_a_draft_adopted_whole_is_brought_up_to_date_by_a_reimport_of_the_edited_runbook(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runbook, draft = tmp_path / "payments.md", tmp_path / "opsbot.yml"
    runbook.write_text(RUNBOOK, encoding="utf-8")
    assert main(["import", str(runbook), "--service", "payments", "-o", str(draft)]) == 0
    adopted = draft.read_text(encoding="utf-8")
    assert "# opsbot import: payments.md " in adopted  # stamped as --merge stamps what it adds
    capsys.readouterr()

    assert main(["import", str(runbook), "--service", "payments", "--merge", str(draft)]) == 0
    assert capsys.readouterr().out == ""  # the same runbook again: nothing to propose

    runbook.write_text(RUNBOOK.replace("sleep 5", "sleep 20"), encoding="utf-8")
    assert main(["import", str(runbook), "--service", "payments", "--merge", str(draft)]) == 0
    out, err = capsys.readouterr()
    assert "-      - {kind: wait, seconds: 5}" in out and "+      - {kind: wait, seconds: 20}" in out
    assert "re-import of payments.md: " in err and "1 updated" in err
    assert "runbooks.restart-payments changed in payments.md: updated (not edited since the import)" in err
    assert draft.read_text(encoding="utf-8") == adopted  # proposed, never written
