"""Client libraries load only for the kinds a catalog uses (`bot/adapters.py`, loaded by the composition root): a
fresh interpreter builds the Context for a catalog and reports which heavy libraries it holds."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.test_cli import ROOT, base_env

# Not psutil: redis-py imports the OpenTelemetry SDK when installed, and the SDK imports psutil.
HEAVY = ("kubernetes", "docker", "aio_pika", "aiomcache", "aiomysql")
PROBE = """
import json, sys
HEAVY = sys.argv[1].split(",")
import handlers
from bot.app import build_bolt_app, build_context
from bot.catalog import parse_catalog
from bot.settings import Settings
ctx = build_context(Settings(slack_bot_token="xoxb-test-0000000000", slack_signing_secret="s" * 32,
                             database_url="sqlite:///:memory:"), parse_catalog(sys.stdin.read()))
build_bolt_app(ctx, [handlers.register])
print(json.dumps(sorted(name for name in HEAVY if name in sys.modules)))
"""


def loaded(catalog: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, ",".join(HEAVY)], input=catalog, capture_output=True, text=True, cwd=ROOT,
                          env=base_env(), timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_catalog_of_http_checks_loads_no_kubernetes_docker_or_queue_client() -> None:
    catalog = "services:\n  api:\n    environment: production\n    checks: [{type: http, url: 'http://127.0.0.1:9/'}]\n"
    assert loaded(catalog) == []


def test_the_kinds_a_catalog_names_load_their_clients_at_start_up() -> None:
    catalog = """
services:
  api:
    environment: production
    target: {type: kubernetes, deployment: api}
    checks:
      - {type: rabbitmq, url: "amqp://guest@127.0.0.1:5672/", queues: [{name: jobs}]}
      - {type: memcached, address: "127.0.0.1:11211"}
  web:
    environment: production
    target: {type: docker, container: web}
"""
    assert loaded(catalog) == ["aio_pika", "aiomcache", "docker", "kubernetes"]
