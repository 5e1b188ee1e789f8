"""Runbooks on Kubernetes through signed Slack requests, against the API double (real client, apps/v1
semantics): a release sets maintenance mode in a ConfigMap, scales, sets the image and waits for the rollout; a
rollout that never becomes available is undone — image, replicas and ConfigMap all put back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.executors.base import Effect
from bot.runs.models import ActionState, StepState
from playground.slack_api import FakeSlack
from tests.conftest import RunningBot, make_settings, start_bot
from tests.k8s_api import K8sApi
from tests.test_approvals import BOB, CHANNEL, click, text
from tests.test_runbooks import message_of, request_runbook

TOKEN = "k8s-token-for-runbooks"


@pytest.fixture
async def cluster() -> AsyncIterator[K8sApi]:
    double = K8sApi(token=TOKEN)
    await double.start()
    double.add_deployment("api-gateway", image="registry.example/api:1.0", replicas=3)
    double.add_configmap("api-config", {"maintenance_mode": "false", "log_level": "info"})
    yield double
    await double.stop()


@pytest.fixture
async def bot(cluster: K8sApi, slack: FakeSlack, http: aiohttp.ClientSession, tmp_path: Path) -> AsyncIterator[RunningBot]:
    slack.groups = {"S0LEADS": [BOB]}
    catalog = f"""
approvals:
  environments:
    production: {{default: {{approvals: 1, approvers: [S0LEADS]}}}}
services:
  gateway:
    environment: production
    target: {{type: kubernetes, deployment: api-gateway, api_url: "{cluster.url}", token_env: K8S_TOKEN,
              rollout_timeout: 1.5, poll_interval: 0.02}}
    maintenance: {{type: configmap, configmap: api-config, key: maintenance_mode}}
runbooks:
  release:
    description: The planned maintenance window's release, from the runbook.
    services: [gateway]
    parameters:
      version: {{type: image_tag}}
    steps:
      - {{kind: maintenance, service: gateway, mode: "on"}}
      - {{kind: scale, service: gateway, replicas: 4}}
      - {{kind: deploy, service: gateway, image: "{{{{ params.version }}}}"}}
      - {{kind: maintenance, service: gateway, mode: "off"}}
      - {{kind: collect-logs, service: gateway, minutes: 10}}
"""
    running, runner = await start_bot(make_settings(slack, f"sqlite:///{tmp_path / 'o.db'}"), catalog, slack, http,
                                      environ={"K8S_TOKEN": TOKEN})
    yield running
    await runner.cleanup()


def image_of(cluster: K8sApi) -> str:
    return cluster.deployment("api-gateway")["spec"]["template"]["spec"]["containers"][0]["image"]


async def test_a_release_sets_maintenance_scales_sets_the_image_and_collects_logs(bot: RunningBot, cluster: K8sApi) -> None:
    run_id = await request_runbook(bot, "run release version=2.0")
    assert image_of(cluster) == "registry.example/api:1.0", "nothing touched before approval"
    await click(bot, "approval.approve", str(run_id), BOB)
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.SUCCEEDED, (run.outcome, [(s.title, s.detail) for s in run.steps])
    assert image_of(cluster) == "registry.example/api:2.0"
    assert cluster.deployment("api-gateway")["spec"]["replicas"] == 4
    assert cluster.configmap("api-config")["data"] == {"maintenance_mode": "false", "log_level": "info"}
    patches = [r.body for r in cluster.writes() if "configmaps" in r.path]
    assert [p.get("data", p) for p in patches][:1] and len(patches) == 2, "on, then off"
    logs = bot.slack.file_text(title="Logs of gateway, last 10 min", channel=CHANNEL)
    assert logs.count("==> api-gateway-") == 4


async def test_a_rollout_that_never_becomes_available_is_undone_in_reverse(bot: RunningBot, cluster: K8sApi) -> None:
    cluster.broken_images.add("registry.example/api:9.9")
    run_id = await request_runbook(bot, "run release version=9.9")
    await click(bot, "approval.approve", str(run_id), BOB)
    run = await bot.ctx.store.get_action(run_id)
    assert run is not None and run.state is ActionState.FAILED, run.outcome
    assert [s.state for s in run.steps[:5]] == [StepState.UNDONE, StepState.UNDONE, StepState.UNDONE, StepState.SKIPPED,
                                                StepState.SKIPPED]
    assert run.steps[2].effect is Effect.CHANGED, "the image was set; its rollout failed: the failing step is undone too"
    undo = [s.title for s in run.steps[5:]]
    assert undo == [
        "Undo “Deploy 9.9 to gateway (Kubernetes deployment default/api-gateway)”: deploy registry.example/api:1.0 again",
        "Undo “Scale gateway to 4 (Kubernetes deployment default/api-gateway)”: scale back to 3",
        "Undo “Turn maintenance mode on for gateway (ConfigMap api-config, key maintenance_mode)”: set it back to \"false\"",
    ]
    assert [s.state for s in run.steps[5:]] == [StepState.SUCCEEDED] * 3
    assert image_of(cluster) == "registry.example/api:1.0"
    assert cluster.deployment("api-gateway")["spec"]["replicas"] == 3
    assert cluster.configmap("api-config")["data"]["maintenance_mode"] == "false"
    story = text(message_of(bot, run_id))
    assert "Step 3 failed: The rollout of deployment default/api-gateway did not finish within 1.5 s" in story
    assert "put back as before the run (step 3, step 2, step 1 undone)" in story
