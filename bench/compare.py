"""opsbot beside a bare Bolt app (bench/bare_bolt.py: AsyncApp on aiohttp, one slash command that acks), measured in
one run on this machine and printed side by side with ratios. Run by hand; nothing is asserted.

    python bench/compare.py [passes] [requests_per_pass] [concurrency] [--postgres] [--from-checkout]

Each app runs as its own process (`opsbot serve` on SQLite, or with --postgres on a fresh database of the local
PostgreSQL as in production; HTTP mode; the fake Slack as its Web API) and gets the
same load: signed `/ops help` commands, `concurrency` at a time, over several passes (ack p50/p99 per pass, so a
pass that met a full garbage collection shows), then its RSS is read from /proc. Start-up is the time from the
process's start to its first answer on /livez.

opsbot runs as `pip install` leaves it: a copy of its packages, byte-compiled (pip compiles what it installs whatever
PYTHONDONTWRITEBYTECODE says, as in the Dockerfile), like the libraries the bare app imports. Run from the checkout
with PYTHONDONTWRITEBYTECODE set, it would compile its ~230 modules at every start: ~0.2 s and ~0.6 MB of RSS that
no deployment pays. `--from-checkout` measures that way all the same.

Then bench/health.py (health over 200 targets against the slowest check) and bench/metrics_scrape.py (what a /metrics
scrape costs) run as they are.
"""

from __future__ import annotations

import asyncio
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

from playground.payloads import SIGNING_SECRET, sign, slash_command
from playground.slack_api import FakeSlack

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "xoxb-bench-0000000000"  # noqa: S105 - the fake Slack's token


@dataclass
class Figures:
    name: str
    startup: float = 0.0
    rss_idle_mb: float = 0.0
    rss_mb: float = 0.0
    passes: list[tuple[float, float, float]] = field(default_factory=list)  # p50 ms, p99 ms, requests/s

    @property
    def p50(self) -> float:
        return statistics.median(p[0] for p in self.passes)

    @property
    def p99(self) -> float:
        return statistics.median(p[1] for p in self.passes)

    @property
    def worst_p99(self) -> float:
        return max(p[1] for p in self.passes)

    @property
    def throughput(self) -> float:
        return statistics.median(p[2] for p in self.passes)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def catalog(services: int) -> str:
    """A catalog of the common kind: HTTP and TCP checks, no Kubernetes or Docker target."""
    entries = "".join(f"  svc{i}:\n    environment: production\n    checks:\n"
                      f"      - {{type: http, url: 'http://127.0.0.1:9/health'}}\n"
                      f"      - {{type: tcp, host: 127.0.0.1, port: 9}}\n" for i in range(services))
    return f"services:\n{entries}"


async def measure(name: str, argv: list[str], env: dict[str, str], port: int, slack: FakeSlack, passes: int,
                  per_pass: int, concurrency: int, http: aiohttp.ClientSession) -> Figures:
    figures = Figures(name)
    started = time.perf_counter()
    proc = spawn(argv, {**env, "PORT": str(port)})
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with {proc.returncode} before it answered")
            try:
                async with http.get(f"http://127.0.0.1:{port}/livez") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.01)
        figures.startup = time.perf_counter() - started
        await asyncio.sleep(0.5)
        figures.rss_idle_mb = rss_mb(proc.pid)
        url = f"http://127.0.0.1:{port}/slack/events"
        gate = asyncio.Semaphore(concurrency)

        async def one() -> float:
            body, content_type = slash_command("/ops", "help", user="U0BENCH", channel="C0BENCH",
                                               response_url=slack.response_url())
            async with gate:
                began = time.perf_counter()
                async with http.post(url, data=body.encode(), headers={"Content-Type": content_type, **sign(body)}) as r:
                    await r.read()
                    if r.status != 200:
                        raise SystemExit(f"{name} answered {r.status}")
                return time.perf_counter() - began

        for _ in range(passes):
            began = time.perf_counter()
            times = sorted(await asyncio.gather(*(one() for _ in range(per_pass))))
            wall = time.perf_counter() - began
            figures.passes.append((times[len(times) // 2] * 1000, times[int(len(times) * 0.99) - 1] * 1000,
                                   per_pass / wall))
        await asyncio.sleep(1.0)  # work the acks started (answers through response_url) settles
        figures.rss_mb = rss_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return figures


def spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # `python -m` puts the working directory first on sys.path: opsbot's packages are found where PYTHONPATH says.
    return subprocess.Popen(argv, cwd=env["PYTHONPATH"].split(os.pathsep)[0], env=env, stdout=subprocess.DEVNULL)


def installed(tmp: Path) -> Path:
    """opsbot's packages copied and byte-compiled, as `pip install` leaves them; the directory to run them from (the
    `opsbot.listeners` entry point names `handlers`, found there first)."""
    tree = tmp / "installed"
    for package in ("bot", "handlers"):
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    if not compileall.compile_dir(tree, quiet=1):
        raise SystemExit("opsbot's modules do not compile (see above); nothing measured")
    return tree


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_script(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    return (done.stdout + done.stderr).strip()


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def main(passes: int, per_pass: int, concurrency: int, postgres: bool, from_checkout: bool) -> None:
    slack = FakeSlack()
    await slack.start()
    database = f"opsbot_bench_{uuid.uuid4().hex[:8]}"
    if postgres:
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{database}"')
        await admin.close()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "opsbot.yml").write_text(catalog(20))
            env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "DATABASE_URL",
                                                                                           "REDIS_URL", "OPSBOT_"))}
            env.update(SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack.api_url,
                       PYTHONPATH=str(ROOT), HOST="127.0.0.1", LOG_LEVEL="WARNING",
                       DATABASE_URL=f"{PG_ADMIN.rsplit('/', 1)[0]}/{database}" if postgres
                       else f"sqlite:///{Path(tmp) / 'o.db'}", OPSBOT_CONFIG=str(Path(tmp) / "opsbot.yml"))
            ops_env = env if from_checkout else {**env, "PYTHONPATH": str(installed(Path(tmp)))}
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                bare = await measure("bare Bolt", [sys.executable, str(ROOT / "bench" / "bare_bolt.py")], env, free_port(),
                                     slack, passes, per_pass, concurrency, http)
                ops = await measure("opsbot", [sys.executable, "-m", "bot", "serve"], ops_env, free_port(), slack,
                                    passes, per_pass, concurrency, http)
    finally:
        await slack.stop()
        if postgres:
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
            await admin.close()

    print(f"{passes} passes × {per_pass} signed slash commands, {concurrency} concurrent, on {os.cpu_count()} cores; "
          f"opsbot's store: {'PostgreSQL' if postgres else 'SQLite'}; "
          f"opsbot {'from the checkout' if from_checkout else 'byte-compiled, as installed'}")
    print(f"{'':28}{'bare Bolt':>12}{'opsbot':>12}{'ratio':>9}")

    def row(label: str, a: float, b: float, unit: str) -> None:
        print(f"{label:28}{a:>10.1f}{unit:2}{b:>10.1f}{unit:2}{b / a:>8.2f}×")

    row("ack p50 (median of passes)", bare.p50, ops.p50, "ms")
    row("ack p99 (median of passes)", bare.p99, ops.p99, "ms")
    row("ack p99 (worst pass)", bare.worst_p99, ops.worst_p99, "ms")
    row("throughput", bare.throughput, ops.throughput, "/s")
    row("RSS at start", bare.rss_idle_mb, ops.rss_idle_mb, "MB")
    row("RSS after the load", bare.rss_mb, ops.rss_mb, "MB")
    row("start-up to /livez", bare.startup * 1000, ops.startup * 1000, "ms")
    for figures in (bare, ops):
        print(f"{figures.name} p99 per pass: " + ", ".join(f"{p[1]:.1f}" for p in figures.passes) + " ms")
    print()
    print(run_script("health.py", "200", "300"))
    print()
    print(run_script("metrics_scrape.py", "200"))


if __name__ == "__main__":
    numbers = [int(a) for a in sys.argv[1:] if a.isdigit()][:3]
    passes, per_pass, concurrency = numbers + [5, 1000, 50][len(numbers):]
    asyncio.run(main(passes, per_pass, concurrency, "--postgres" in sys.argv[1:], "--from-checkout" in sys.argv[1:]))
