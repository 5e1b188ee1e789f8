"""The fault suite's own world: a private PostgreSQL and a private Redis (started here, so restarting them disturbs no
other test), the bot replicas as `opsbot serve` processes, and the signals the nemesis sends them.

Not responsible for what runs against them (workload.py) nor for judging the outcome (checker.py).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.conftest import free_port


def _wait_port(port: int, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb in a temp dir, a free port), run as the `postgres` user when the
    tests run as root (PostgreSQL refuses root)."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found and shutil.which("initdb") is None:
            raise RuntimeError("the fault suite needs PostgreSQL's server binaries (initdb, pg_ctl): none found")
        self.bin = Path(found[-1]).parent if found else Path(shutil.which("initdb") or "").parent
        self.root = Path(tempfile.mkdtemp(prefix="opsbot-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user: str | None = "postgres" if os.geteuid() == 0 else None
        self.restarts = 0
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        subprocess.run([str(self.bin / argv[0]), *argv[1:]], check=True, user=self.user, capture_output=True,
                       cwd=self.root, timeout=60)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start")

    def crash(self) -> None:
        """Stop at once, as a crash would (`-m immediate`: no checkpoint, every connection cut)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self.restarts += 1

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A redis-server of its own on a free port, without persistence: a restart loses every lease it held."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("the fault suite needs redis-server on PATH")
        log = (self.root / "redis.log").open("ab")
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.root)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        _wait_port(self.port, 10)

    def crash(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.restarts += 1

    def destroy(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Replica:
    """One `opsbot serve` process; killed, paused and resumed by the nemesis, started again in its place."""

    def __init__(self, name: str, env: dict[str, str], cwd: Path) -> None:
        self.name, self.env, self.cwd = name, env, cwd
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def log_path(self) -> Path:
        return self.cwd / f"{self.name}.log"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=self.cwd,
                                         env={**self.env, "PORT": str(self.port)}, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        self.paused = False

    def wait_healthy(self, timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, f"{self.name} exited: {self.log_path.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} did not become healthy: {self.log_path.read_text()[-3000:]}")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(sig)
            if sig is signal.SIGKILL:
                self.proc.wait()
            self.paused = sig is signal.SIGSTOP

    def stop(self) -> None:
        """Stop gracefully (SIGCONT first if paused; SIGKILL past 20 s)."""
        if not self.alive:
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
