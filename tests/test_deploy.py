"""deploy/: the Kubernetes manifests validate against the Kubernetes schemas, the alert rules pass promtool's check
and unit tests, and the rules and the Grafana dashboard only query metrics a running bot really exports."""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_validate
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bot.catalog_loading import parse_catalog
from bot.cli import main as cli
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
RULES = ROOT / "deploy" / "prometheus" / "opsbot-rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "opsbot.json"
CRDS = {"ServiceMonitor", "PrometheusRule"}
K8S_VERSION = "1.30.0"  # the oldest Kubernetes the manifests are meant for (sidecar-free, policy/v1 PDBs)


def rendered() -> list[dict[str, Any]]:
    """What `kubectl apply -k deploy/kubernetes` would apply: kustomize's output, or the listed files without it."""
    return copy.deepcopy(_rendered())


@functools.cache
def _rendered() -> list[dict[str, Any]]:
    if shutil.which("kubectl"):
        out = subprocess.run(["kubectl", "kustomize", str(KUBE)], capture_output=True, text=True, check=True).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]
    listed = yaml.safe_load((KUBE / "kustomization.yaml").read_text())["resources"]
    return [doc for name in listed for doc in yaml.safe_load_all((KUBE / name).read_text()) if doc]


def of_kind(kind: str, name: str | None = None) -> dict[str, Any]:
    [doc] = [doc for doc in rendered() if doc["kind"] == kind and name in (None, doc["metadata"]["name"])]
    return doc


def test_the_kustomization_lists_every_manifest_and_nothing_else() -> None:
    listed = yaml.safe_load((KUBE / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in KUBE.glob("*.yaml") if p.name != "kustomization.yaml")
    kinds = {doc["kind"] for doc in rendered()}
    assert kinds == {"Namespace", "ConfigMap", "Job", "Deployment", "PodDisruptionBudget", "Service", "ServiceMonitor",
                     "PrometheusRule"}
    assert "Secret" not in kinds, "secrets are referenced, never shipped"


@pytest.mark.parametrize("doc", [d for d in rendered() if d["kind"] not in CRDS], ids=lambda d: d["kind"])
def test_each_manifest_validates_against_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises ValidationError naming the path


def test_a_broken_manifest_is_refused_by_the_validation() -> None:
    broken = of_kind("Deployment")
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_deployment_is_shaped_for_production() -> None:
    deployment = of_kind("Deployment")
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert spec["replicas"] == 2 and spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {"kubernetes.io/hostname",
                                                                          "topology.kubernetes.io/zone"}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], "a writable /tmp on a read-only root"
    assert volumes[mounts["/etc/opsbot"]]["configMap"]["name"] == of_kind("ConfigMap")["metadata"]["name"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    env = {e["name"]: e for e in container["env"]}
    for secret in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "DATABASE_URL", "REDIS_URL",
                   "OPSBOT_METRICS_TOKEN"):
        assert "value" not in env[secret] and env[secret]["valueFrom"]["secretKeyRef"]["name"], secret
    pdb = of_kind("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1 and pdb["spec"]["selector"] == spec["selector"]
    for service in ("opsbot", "opsbot-metrics"):
        assert of_kind("Service", service)["spec"]["selector"] == spec["selector"]["matchLabels"]


def test_the_catalog_in_the_configmap_is_valid() -> None:
    catalog = parse_catalog(of_kind("ConfigMap")["data"]["opsbot.yml"])
    assert catalog.services


def test_the_migration_job_runs_a_real_opsbot_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [container] = of_kind("Job")["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["opsbot"]
    assert container["env"][-1]["valueFrom"]["secretKeyRef"]["name"] == "opsbot-database"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'o.db'}")
    assert cli(container["args"]) == 0
    assert (tmp_path / "o.db").exists()


def test_the_service_monitor_scrapes_the_services_metrics_port_with_the_token() -> None:
    monitor, service, deployment = of_kind("ServiceMonitor"), of_kind("Service", "opsbot-metrics"), of_kind("Deployment")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    matched = [s["metadata"]["name"] for s in rendered() if s["kind"] == "Service"
               if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
    # only the Service that keeps unready pods: a replica whose socket is down is still scraped
    assert matched == ["opsbot-metrics"]
    assert service["spec"]["publishNotReadyAddresses"] is True
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]} and endpoint["path"] == "/metrics"
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    token = next(e for e in container["env"] if e["name"] == "OPSBOT_METRICS_TOKEN")["valueFrom"]["secretKeyRef"]
    assert endpoint["authorization"]["type"] == "Bearer"
    assert endpoint["authorization"]["credentials"] == {"name": token["name"], "key": token["key"]}


def test_the_prometheus_rule_carries_the_plain_rules_file() -> None:
    rule = of_kind("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def readme_anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings (lower case, punctuation dropped, spaces to dashes), outside code blocks."""
    anchors, fenced = set(), False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif line.startswith("#") and not fenced:
            anchors.add(re.sub(r"[^a-z0-9 _-]", "", line.lstrip("#").strip().lower()).replace(" ", "-"))
    return anchors


def alerts() -> list[dict[str, Any]]:
    return [r for group in yaml.safe_load(RULES.read_text())["groups"] for r in group["rules"] if "alert" in r]


def test_the_alerts_cover_what_the_issue_asks_each_with_a_runbook_section_in_the_readme() -> None:
    names = {a["alert"] for a in alerts()}
    assert {"OpsbotSocketModeDown", "OpsbotSlackAckSlow", "OpsbotLeasesLost", "OpsbotRunStuck",
            "OpsbotApprovalsExpiring", "OpsbotSlackApiErrors"} <= names
    anchors = readme_anchors((ROOT / "README.md").read_text())
    assert "operating-opsbot" in anchors
    for alert in alerts():
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}
        url = alert["annotations"]["runbook_url"]
        assert url.split("#", 1)[1] in anchors, f"{alert['alert']}: no README section for {url}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is in Debian's prometheus package")
def test_promtool_checks_the_rules_and_runs_their_unit_tests() -> None:
    checked = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(["promtool", "test", "rules", RULES.with_name("opsbot-rules.test.yml").name],
                            capture_output=True, text=True, cwd=RULES.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.fixture
async def bot(slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> AsyncIterator[RunningBot]:
    running, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), "services: {}\n", slack, http)
    yield running
    await runner.cleanup()


def queried_names(expr: str) -> set[str]:
    return set(re.findall(r"\bopsbot_[a-z_]+\b", expr))


async def test_the_rules_and_the_dashboard_query_only_metrics_the_bot_exports(bot: RunningBot) -> None:
    async with bot.http.get(f"{bot.url}/metrics") as response:
        exposition = await response.text()
    # A labelled series appears once something is counted; its family's `# TYPE` line is there from the start, and
    # says which sample names it has.
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",), "info": ("_info",)}
    exported = {family.name + suffix for family in text_string_to_metric_families(exposition)
                for suffix in suffixes[family.type] if not family.name.endswith("_created")}  # a counter's start time
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    exprs += [a["expr"] for a in alerts()]
    used = set().union(*map(queried_names, exprs))
    assert used, "no query names a metric"
    assert used <= exported, f"queried but not exported: {sorted(used - exported)}"
    # And the other way round: every metric family the bot exports is on the dashboard.
    families = {re.sub(r"_(total|bucket|count|sum|info)$", "", name) for name in exported}
    shown = {re.sub(r"_(total|bucket|count|sum|info)$", "", name) for name in used}
    assert families - shown == set(), f"exported but not on the dashboard or in a rule: {sorted(families - shown)}"
