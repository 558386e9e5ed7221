"""Shared helpers for the benchmarks.

A real `ods serve` subprocess with its own data dir (or several, started at
once; killed and restarted in place), a logged-in HTTP client, a thread that
samples values (RSS, disk use) and keeps their peaks, readers of /metrics and
/share, and small formatting helpers. The benchmarks print Markdown tables on
stdout and their progress on stderr.
"""

from __future__ import annotations

import hashlib
import os
import platform
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, urlsplit

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from ods.core.config import Settings, env_names

MIB = 1024 * 1024
HOST = "127.0.0.1"
SAMPLE_INTERVAL_SECONDS = 0.05
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0
LOG_TAIL_CHARS = 4000

# Every variable ODS reads: none may leak from the caller's shell into the server.
SETTING_NAMES = frozenset(
    {"ODS_CONF", *(name for field in Settings.model_fields.values() for name in env_names(field))}
)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def ods_command() -> list[str]:
    """The `ods` console script of this interpreter's environment, or `python -m ods`."""
    script = Path(sys.executable).with_name("ods")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "ods"]


def server_environment(
    data_dir: Path, admin_password: str, settings: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SETTING_NAMES}
    env["DATA_DIR"] = str(data_dir)
    env["ODS_ADMIN_PASSWORD"] = admin_password
    env.update(settings or {})
    return env


@dataclass
class OdsServer:
    """A running `ods serve` process."""

    process: subprocess.Popen[bytes]
    base_url: str
    data_dir: Path
    admin_password: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Poll /readyz until the database answers; fail if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ods serve exited with {self.process.returncode}")
            with suppress(httpx.TransportError):
                answer = httpx.get(f"{self.base_url}/readyz", timeout=1.0, trust_env=False)
                if answer.status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"ods serve was not ready after {timeout:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def port(self) -> int:
        port = urlsplit(self.base_url).port
        assert port is not None
        return port

    def kill(self) -> None:
        """SIGKILL, as in a power cut or the OOM killer: no shutdown at all."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def start_server(
    data_dir: Path,
    log_path: Path,
    *,
    port: int | None = None,
    admin_password: str | None = None,
    append_log: bool = False,
    settings: Mapping[str, str] | None = None,
) -> OdsServer:
    """Start `ods serve` with DATA_DIR=data_dir and return at once, without waiting.

    A free loopback port and a new admin password unless given: pass the old
    ones to restart a server where it was, as its peers know it. `settings`
    are more ODS_* variables for the server (e.g. ODS_ACCEL_REDIRECT).
    """
    port = free_port() if port is None else port
    password = secrets.token_urlsafe(18) if admin_password is None else admin_password
    data_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab" if append_log else "wb") as log:
        process = subprocess.Popen(
            [*ods_command(), "serve", "--host", HOST, "--port", str(port)],
            env=server_environment(data_dir, password, settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return OdsServer(process, f"http://{HOST}:{port}", data_dir, password, log_path)


def restart_server(server: OdsServer) -> OdsServer:
    """The same server started again: same port, data dir, password and log."""
    return start_server(
        server.data_dir,
        server.log_path,
        port=server.port,
        admin_password=server.admin_password,
        append_log=True,
    )


def stop_servers(servers: Sequence[OdsServer]) -> None:
    """SIGTERM to all at once, then wait for each (SIGKILL after the timeout)."""
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        server.stop()


@contextmanager
def running_servers(workdir: Path, names: Sequence[str]) -> Iterator[list[OdsServer]]:
    """One `ods serve` per name, DATA_DIR=workdir/name, all started at once; stopped after.

    The caller may replace a server in the yielded list (after a restart): the
    list's servers at exit are the ones stopped.
    """
    servers: list[OdsServer] = []
    try:
        servers.extend(start_server(workdir / name, workdir / f"{name}.log") for name in names)
        for server in servers:
            server.wait_ready()
        yield servers
    except BaseException:
        stop_servers(servers)
        for name, server in zip(names, servers, strict=False):
            progress(f"{name} log (last {LOG_TAIL_CHARS} characters):\n{server.log_tail()}")
        raise
    finally:
        stop_servers(servers)


@contextmanager
def running_server(
    data_dir: Path,
    log_path: Path,
    *,
    admin_password: str | None = None,
    settings: Mapping[str, str] | None = None,
) -> Iterator[OdsServer]:
    """Start `ods serve` on a free loopback port with DATA_DIR=data_dir; stop it after.

    Pass the admin password of an earlier server on the same data dir to log in
    as before, and `settings` for more ODS_* variables.
    """
    server = start_server(data_dir, log_path, admin_password=admin_password, settings=settings)
    try:
        server.wait_ready()
        yield server
    except BaseException:
        server.stop()
        progress(f"ods serve log (last {LOG_TAIL_CHARS} characters):\n{server.log_tail()}")
        raise
    finally:
        server.stop()


@contextmanager
def logged_in_client(server: OdsServer, timeout: httpx.Timeout) -> Iterator[httpx.Client]:
    """An HTTP client for the server, logged in as the first-start admin."""
    with httpx.Client(base_url=server.base_url, timeout=timeout, trust_env=False) as client:
        response = client.post(
            "/api/auth/login",
            json={"username": "admin", "password": server.admin_password},
        )
        response.raise_for_status()
        client.headers["Authorization"] = f"Bearer {response.json()['token']}"
        yield client


def process_rss_probe(pid: int) -> Callable[[], int]:
    """Resident memory of the process and its children, in bytes."""
    process = psutil.Process(pid)

    def rss() -> int:
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            with suppress(psutil.NoSuchProcess):
                total += child.memory_info().rss
        return total

    return rss


def metric_value(base_url: str, name: str, labels: Mapping[str, str]) -> float:
    """One sample of the server's GET /metrics (0 when it is not there yet)."""
    text = httpx.get(f"{base_url}/metrics", timeout=30.0, trust_env=False).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == dict(labels):
                return float(sample.value)
    return 0.0


def served_sha256(base_url: str, filename: str) -> str:
    """SHA-256 of the file as the server sends it from /share/{filename}."""
    digest = hashlib.sha256()
    with (
        httpx.Client(base_url=base_url, timeout=60.0, trust_env=False) as client,
        client.stream("GET", f"/share/{quote(filename)}") as response,
    ):
        if response.status_code != 200:
            raise RuntimeError(f"/share/{filename} answered {response.status_code}")
        for block in response.iter_bytes(MIB):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as reader:
        while block := reader.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def busiest_thread_probe(pid: int) -> Callable[[], int]:
    """CPU time of the process's busiest thread since the probe was made, in microseconds.

    Threads that start later count from zero. A thread that ends between two
    calls loses what it used after the last one, so call it often.
    """
    process = psutil.Process(pid)

    def cpu() -> dict[int, float]:
        return {thread.id: thread.user_time + thread.system_time for thread in process.threads()}

    baseline = cpu()

    def busiest() -> int:
        now = cpu()
        used = [seconds - baseline.get(tid, 0.0) for tid, seconds in now.items()]
        return int(max(used, default=0.0) * 1e6)

    return busiest


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process and its waited-for children used so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def disk_usage(root: Path) -> int:
    """Bytes allocated under root, like `du -s -B1`: the sum of st_blocks * 512.

    Each inode is counted once, so a file renamed from one subdirectory to
    another while the tree is being walked is not counted twice.
    """
    seen: set[int] = set()
    total = 0
    pending = [root]
    while pending:
        with suppress(FileNotFoundError), os.scandir(pending.pop()) as entries:
            for entry in entries:
                with suppress(FileNotFoundError):
                    info = entry.stat(follow_symlinks=False)
                    if info.st_ino not in seen:
                        seen.add(info.st_ino)
                        total += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
    return total


class PeakSampler:
    """Calls every probe every interval in a thread and keeps each one's largest value."""

    def __init__(
        self,
        probes: Mapping[str, Callable[[], int]],
        interval: float = SAMPLE_INTERVAL_SECONDS,
    ) -> None:
        self._probes = dict(probes)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-sampler", daemon=True)
        self._error: BaseException | None = None
        self.peaks = dict.fromkeys(self._probes, 0)
        self.samples = 0

    def sample(self) -> None:
        for name, probe in self._probes.items():
            self.peaks[name] = max(self.peaks[name], probe())
        self.samples += 1

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                self.sample()
        except BaseException as exc:
            self._error = exc

    def __enter__(self) -> PeakSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        if exc is None and self._error is not None:
            raise RuntimeError("a sampling probe failed") from self._error
        if exc is None:
            self.sample()


def filesystem_of(path: Path) -> str:
    """`device on mountpoint (fstype)` of the filesystem holding path."""
    resolved = path.resolve()
    holding = [
        partition
        for partition in psutil.disk_partitions(all=True)
        if resolved.is_relative_to(partition.mountpoint)
    ]
    if not holding:
        return "unknown filesystem"
    best = max(holding, key=lambda partition: len(partition.mountpoint))
    return f"{best.device} on {best.mountpoint} ({best.fstype})"


def machine_summary() -> str:
    """CPUs, memory, Python and the current load: the context of every figure."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"Machine: {os.cpu_count()} CPUs ({platform.machine()}), "
        f"{psutil.virtual_memory().total / 1024**3:.1f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}; "
        f"load average {load} at the end of the run."
    )


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(cell.rjust(width) for cell, width in zip(cells, widths, strict=True))
            + " |"
        )

    rule = "|" + "|".join("-" * (width + 1) + ":" for width in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])
