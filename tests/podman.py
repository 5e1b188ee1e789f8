"""A private podman service speaking the Docker API, the busybox images it runs, and containers made per test.

Real containers under runc with storage in a temporary directory (needs podman, runc and busybox installed);
not responsible for the executor's behaviour, only for building the world it acts on.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import docker
import pytest
from docker.models.containers import Container

from bot.executors.docker_session import API_VERSION

IMAGE = "localhost/opsbot-test"
TEST_LABEL = "org.opsbot.test"  # every test container carries it, so clean-up finds recreated ones too

CONTAINERS_CONF = """\
[containers]
netns="host"
cgroupns="host"
default_ulimits=["nofile=1024:1024","nproc=1024:1024"]
[engine]
runtime="runc"
cgroup_manager="cgroupfs"
events_logger="file"
"""

# busybox applets the images link; `httpd -f -p PORT -h /www` serves /www/health and /www/version.
APPLETS = ("sh", "sleep", "httpd", "echo", "cat", "wget", "false", "true", "ls", "printf", "kill")
DEFAULT_CMD = '["httpd", "-f", "-p", "8080", "-h", "/www"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Podman:
    """One `podman system service` on its own storage; `argv` gives every CLI call the same flags."""

    tmp: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.tmp / "podman.sock"

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket_path}"

    def argv(self, *args: str) -> list[str]:
        return [
            "podman",
            "--storage-driver=vfs",
            "--root", str(self.tmp / "root"),
            "--runroot", str(self.tmp / "run"),
            "--tmpdir", str(self.tmp / "libpod"),
            *args,
        ]  # fmt: skip

    def run(self, *args: str) -> str:
        done = subprocess.run(self.argv(*args), check=False, env=self.env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def start(self) -> None:
        self.log = open(self.tmp / "service.log", "wb")  # noqa: SIM115 - the service writes to it until stop()
        self.process = subprocess.Popen(
            self.argv("system", "service", "--time=0", self.base_url),
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not self.socket_path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman system service did not start:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        with suppress(RuntimeError):
            self.run("rm", "--all", "--force", "--time", "0")
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()

    def log_tail(self, lines: int = 20) -> str:
        path = self.tmp / "service.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def import_image(self, tag: str, version: str, *, broken: bool = False, healthy: bool = True) -> str:
        """Import a busybox image whose /www/version says `version`; `broken` makes its httpd exit 1 at once,
        `healthy=False` leaves out /www/health (it runs and serves, but its health endpoint answers 404)."""
        tree = self.tmp / f"image-{tag}"
        (tree / "bin").mkdir(parents=True)
        (tree / "www").mkdir()
        (tree / "tmp").mkdir()
        shutil.copy2(shutil.which("busybox") or "busybox", tree / "bin" / "busybox")
        for applet in APPLETS:
            (tree / "bin" / applet).symlink_to("busybox")
        if broken:
            (tree / "bin" / "httpd").unlink()
            (tree / "bin" / "httpd").write_text("#!/bin/sh\necho 'httpd: broken build' >&2\nexit 1\n")
            (tree / "bin" / "httpd").chmod(0o755)
        if healthy:
            (tree / "www" / "health").write_text("ok\n")
        (tree / "www" / "version").write_text(f"{version}\n")
        archive = self.tmp / f"image-{tag}.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(tree, arcname=".")
        reference = f"{IMAGE}:{tag}"
        self.run(
            "import",
            "--change", f"CMD {DEFAULT_CMD}",
            "--change", f"ENV IMAGE_VERSION={version}",
            "--change", f"LABEL org.opsbot.image={version}",
            str(archive), reference,
        )  # fmt: skip
        return reference

    async def healthcheck(self, name: str) -> None:
        """Run a container's healthcheck once, as the systemd timer podman relies on would."""
        process = await asyncio.create_subprocess_exec(
            *self.argv("healthcheck", "run", name),
            env=self.env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await process.wait()

    @asynccontextmanager
    async def health_timer(self, *names: str, every: float = 0.25) -> AsyncIterator[None]:
        """Keep running the healthchecks of `names`: podman schedules them with systemd, absent here."""

        async def tick() -> None:
            while True:
                for name in names:
                    await self.healthcheck(name)
                await asyncio.sleep(every)

        task = asyncio.create_task(tick())
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


@dataclass(frozen=True)
class Images:
    """The test images: two good versions and one whose server exits at once."""

    v1: str
    v2: str
    broken: str
    sick: str  # runs and serves, but has no /health (a runbook's health gate fails on it)
    repository: str = IMAGE


@pytest.fixture(scope="session")
def podman() -> Iterator[Podman]:
    """The podman service for the whole run; fails (never skips) when podman is not installed."""
    missing = [tool for tool in ("podman", "runc", "busybox") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"the Docker executor tests need {', '.join(missing)} installed (apt-get install podman runc busybox-static)",
            pytrace=False,
        )
    busybox = Path(shutil.which("busybox") or "")
    if b"ld-linux" in busybox.read_bytes()[:8192]:  # a dynamic busybox would find no libc in the image
        pytest.fail(f"{busybox} is dynamically linked; install busybox-static", pytrace=False)
    # Not under pytest's basetemp: podman refuses a runroot longer than 50 characters, and an xdist worker's
    # basetemp (/tmp/pytest-of-root/pytest-N/popen-gw0/…) is longer. Removed at the end like the rest.
    tmp = Path(tempfile.mkdtemp(prefix="opsbot-podman-"))
    (tmp / "containers.conf").write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(tmp / "containers.conf")}
    env.pop("DOCKER_HOST", None)
    service = Podman(tmp, env)
    service.start()
    try:
        yield service
    finally:
        service.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def images(podman: Podman) -> Images:
    return Images(
        v1=podman.import_image("1", "1"),
        v2=podman.import_image("2", "2"),
        broken=podman.import_image("broken", "broken", broken=True),
        sick=podman.import_image("sick", "sick", healthy=False),
    )


@pytest.fixture(scope="session")
def docker_client(podman: Podman) -> Iterator[docker.DockerClient]:
    """The test's own client for arranging and inspecting; the executor makes its own."""
    client = docker.DockerClient(base_url=podman.base_url, version=API_VERSION)  # not asked for: podman runs dpkg-query
    yield client
    client.close()


@dataclass
class Containers:
    """Starts containers for one test under unique names; removes every one carrying its label afterwards."""

    client: docker.DockerClient
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def name(self, base: str) -> str:
        return f"opsbot-{self.run_id}-{base}"

    def port(self) -> int:
        """A free host port for a container to serve on (containers share the host's network)."""
        return free_port()

    def run(
        self, name: str, image: str, *, port: int | None = None, labels: dict[str, str] | None = None, **kwargs: Any
    ) -> Container:
        """Run `image` as `name`, on the host network unless told otherwise, serving HTTP on `port` (or the
        image's 8080); SIGKILL stops it at once."""
        options: dict[str, Any] = {} if "network" in kwargs else {"network_mode": "host"}
        if port is not None:
            options["command"] = ["httpd", "-f", "-p", str(port), "-h", "/www"]
        options.update(kwargs)
        return self.client.containers.run(
            image,
            name=name,
            detach=True,
            stop_signal="SIGKILL",  # busybox as PID 1 ignores SIGTERM; keep restarts quick
            labels={**(labels or {}), TEST_LABEL: self.run_id},
            **options,
        )

    def get(self, name: str) -> Container:
        return self.client.containers.get(name)

    def remove_all(self) -> None:
        for container in self.client.containers.list(all=True, filters={"label": f"{TEST_LABEL}={self.run_id}"}):
            with suppress(docker.errors.NotFound):
                container.remove(force=True)
        for network in self.client.networks.list(names=[self.name("")]):
            if network.name.startswith(self.name("")):
                with suppress(docker.errors.NotFound):
                    network.remove()
        for volume in self.client.volumes.list(filters={"name": self.name("")}):
            with suppress(docker.errors.NotFound):
                volume.remove(force=True)


@pytest.fixture
def containers(docker_client: docker.DockerClient) -> Iterator[Containers]:
    made = Containers(docker_client)
    yield made
    made.remove_all()
