"""A real Prometheus (Debian's /usr/bin/prometheus) scraping a tiny exporter the tests control, one per session.

    async def test_x(prometheus: RunningPrometheus) -> None:
        prometheus.exporter.set("http_requests_total", 10, status="200")   # any gauge or counter, with labels
        await prometheus.wait_for('http_requests_total{status="200"}', lambda v: v == 10)
        ... point a check at prometheus.url ...

Prometheus scrapes every second into a temporary TSDB. Its first scrape lands ~6 s after start (Prometheus hands
new targets to the scraper at most every 5 s), so one server and one exporter serve the whole session: both are
started synchronously (a process, and a thread serving /metrics), so they belong to no test's event loop. The
`prometheus` fixture empties the exporter before each test and waits for a scrape of it, so a test never sees
another's series as current (a rate() over a window still reaches back into it: wait for the value you need). A
counter that grows: `exporter.add(name, n, **labels)` from a task; a histogram: `set` each `<name>_bucket` with
its `le` label, plus `<name>_count` and `<name>_sum`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp
import pytest

JOB = "exporter"


@dataclass
class Exporter:
    """Serves /metrics in Prometheus's text format from its own thread; `set` changes what the next scrape sees."""

    _values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "the exporter is not serving"
        return int(self._server.server_address[1])

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[(name, tuple(sorted(labels.items())))] = value

    def add(self, name: str, amount: float, **labels: str) -> None:
        """Increase a counter (starting at 0), as a real service's request counter grows."""
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def remove(self, name: str, **labels: str) -> None:
        with self._lock:
            self._values.pop((name, tuple(sorted(labels.items()))), None)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def render(self) -> str:
        with self._lock:
            values = sorted(self._values.items())
        lines = []
        for (name, labels), value in values:
            shown = ",".join(f'{key}="{_escape(val)}"' for key, val in labels)
            lines.append(f"{name}{{{shown}}} {value!r}" if shown else f"{name} {value!r}")
        return "\n".join(lines) + "\n"

    def serve(self) -> None:
        exporter = self

        class Metrics(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = urllib.parse.urlsplit(self.path).path == "/metrics"
                body = exporter.render().encode() if found else b"404 page not found\n"
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # a scrape a second would drown the test's output

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="exporter", daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass
class PrometheusServer:
    """The Prometheus process and the exporter it scrapes; started and stopped without an event loop."""

    exporter: Exporter
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path

    @classmethod
    def start(cls, binary: str = "prometheus", *, rules: str | None = None,
              alertmanagers: Sequence[str] = ()) -> PrometheusServer:
        """Started and scraped once. `rules`: a rule file's YAML (evaluated every second); `alertmanagers`: the
        `host:port` of each Alertmanager its alerts go to (all of them, as for an HA pair)."""
        path = shutil.which(binary)
        if path is None:
            raise RuntimeError("prometheus is not installed (apt-get install -y prometheus)")
        exporter = Exporter()
        exporter.serve()
        workdir = Path(tempfile.mkdtemp(prefix="opsbot-prometheus-"))
        port = _free_port()
        config = workdir / "prometheus.yml"
        text = ("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n"
                f"      - targets: ['127.0.0.1:{exporter.port}']\n")
        if rules is not None:
            (workdir / "rules.yml").write_text(rules)
            text += f"rule_files: ['{workdir / 'rules.yml'}']\n"
        if alertmanagers:
            targets = ", ".join(f"'{target}'" for target in alertmanagers)
            text += f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [{targets}]\n"
        config.write_text(text)
        argv = [path, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
        with (workdir / "prometheus.log").open("wb") as log:  # a file, not a pipe: nobody reads a pipe meanwhile
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        server = cls(exporter, f"http://127.0.0.1:{port}", process, workdir)
        try:
            server._until_ready()
            # `up` is written by the first scrape: from then on the exporter's values are queryable.
            server._until(f'up{{job="{JOB}"}} == 1', "the first scrape")
        except BaseException:
            server.stop()
            raise
        return server

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.exporter.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def query(self, promql: str) -> list[float]:
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=5) as answer:
            data = json.loads(answer.read())["data"]
        if data["resultType"] == "scalar":
            return [float(data["result"][1])]
        return [float(series["value"][1]) for series in data["result"]]

    def scraped_since(self, since: float) -> bool:
        """Whether a scrape of the exporter started after `since` (Unix seconds) has been stored."""
        return any(value > since for value in self.query(f'timestamp(up{{job="{JOB}"}})'))

    def _until(self, promql: str, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.query(promql):
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus: no {what} within {timeout:g} s:\n{self._log()}")
            time.sleep(0.1)

    def _until_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}: {self._log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus did not get ready within {timeout:g} s")

    def _log(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


@dataclass
class RunningPrometheus:
    """The session's Prometheus as one test sees it: its URL, the exporter, and queries on the test's loop."""

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


@pytest.fixture(scope="session")
def prometheus_server() -> Iterator[PrometheusServer]:
    """One Prometheus and exporter for the session (per xdist worker); tests take `prometheus`."""
    server = PrometheusServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def prometheus(prometheus_server: PrometheusServer, http: aiohttp.ClientSession) -> AsyncIterator[RunningPrometheus]:
    """The session's Prometheus with an empty exporter, scraped since it was emptied: what earlier tests exported
    is no longer current. Emptied again afterwards."""
    exporter = prometheus_server.exporter
    exporter.clear()
    cleared = time.time()
    running = RunningPrometheus(prometheus_server.url, exporter, http)
    deadline = time.monotonic() + 20
    while not await asyncio.to_thread(prometheus_server.scraped_since, cleared):
        if time.monotonic() > deadline:
            raise AssertionError("prometheus did not scrape the emptied exporter within 20 s")
        await asyncio.sleep(0.2)
    try:
        yield running
    finally:
        exporter.clear()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
