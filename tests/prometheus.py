"""A real Prometheus (Debian's /usr/bin/prometheus) scraping a tiny exporter the test serves and controls.

    async with prometheus_with_exporter() as prom:
        prom.exporter.set("http_requests_total", 10, status="200")     # any gauge or counter, with labels
        await prom.wait_for('http_requests_total{status="200"}', lambda v: v == 10)
        ... point a check at prom.url ...

Prometheus scrapes every second into a temporary TSDB; the server is stopped and its files removed on exit. The
first scrape lands ~6 s after start (Prometheus hands new targets to the scraper at most every 5 s), so share one
instance per test module where you can. A counter that grows: `exporter.add(name, n, **labels)` from a task; a
histogram: `set` each `<name>_bucket` with its `le` label, plus `<name>_count` and `<name>_sum`.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

JOB = "exporter"


@dataclass
class Exporter:
    """Serves /metrics in Prometheus's text format; `set` changes what the next scrape sees."""

    port: int = 0
    _values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    def set(self, name: str, value: float, **labels: str) -> None:
        self._values[(name, tuple(sorted(labels.items())))] = value

    def add(self, name: str, amount: float, **labels: str) -> None:
        """Increase a counter (starting at 0), as a real service's request counter grows."""
        key = (name, tuple(sorted(labels.items())))
        self._values[key] = self._values.get(key, 0.0) + amount

    def remove(self, name: str, **labels: str) -> None:
        self._values.pop((name, tuple(sorted(labels.items()))), None)

    def render(self) -> str:
        lines = []
        for (name, labels), value in sorted(self._values.items()):
            shown = ",".join(f'{key}="{_escape(val)}"' for key, val in labels)
            lines.append(f"{name}{{{shown}}} {value!r}" if shown else f"{name} {value!r}")
        return "\n".join(lines) + "\n"

    async def start(self) -> None:
        async def metrics(_: web.Request) -> web.Response:
            return web.Response(text=self.render(), content_type="text/plain")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class RunningPrometheus:
    url: str  # base URL, as a catalog's `url:` gives it
    exporter: Exporter
    http: aiohttp.ClientSession

    async def query(self, promql: str) -> list[float]:
        """The values an instant query returns now (one per series; a scalar gives one)."""
        async with self.http.get(f"{self.url}/api/v1/query", params={"query": promql}) as response:
            body = await response.json()
        if body.get("status") != "success":
            raise AssertionError(f"query {promql!r} failed: {body}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [float(data["result"][1])]
        return [float(series["value"][1]) for series in data["result"]]

    async def wait_for(self, promql: str, accept: Callable[[float], bool] = lambda _: True, timeout: float = 20) -> float:
        """Poll until the query returns a value `accept` likes (a new scrape landed); that value."""
        deadline = time.monotonic() + timeout
        seen: list[float] = []
        while time.monotonic() < deadline:
            seen = await self.query(promql)
            for value in seen:
                if accept(value):
                    return value
            await asyncio.sleep(0.2)
        raise AssertionError(f"{promql!r} gave {seen} for {timeout:g} s, never an accepted value")


@asynccontextmanager
async def prometheus_with_exporter(binary: str = "prometheus") -> AsyncIterator[RunningPrometheus]:
    """Start an exporter and a Prometheus scraping it every second; yield once the first scrape has landed."""
    path = shutil.which(binary)
    if path is None:
        raise RuntimeError("prometheus is not installed (apt-get install -y prometheus)")
    exporter = Exporter()
    await exporter.start()
    workdir = Path(tempfile.mkdtemp(prefix="opsbot-prometheus-"))
    port = _free_port()
    config = workdir / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['127.0.0.1:{exporter.port}']\n"
    )
    argv = [path, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    log = workdir / "prometheus.log"  # a file, not a pipe: nobody reads a pipe while the test runs
    with log.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=log_file
        )
    try:
        async with aiohttp.ClientSession() as http:
            running = RunningPrometheus(f"http://127.0.0.1:{port}", exporter, http)
            await _until_ready(running, proc, log)
            # `up` is written by the first scrape: from then on the exporter's values are queryable.
            await running.wait_for(f'up{{job="{JOB}"}}', lambda value: value == 1)
            yield running
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await exporter.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def _until_ready(running: RunningPrometheus, proc: asyncio.subprocess.Process, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"prometheus exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            async with running.http.get(f"{running.url}/-/ready") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"prometheus did not get ready within {timeout:g} s")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
