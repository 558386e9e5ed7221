"""Start a real `ods serve` process on a free port with its own data dir.

For end-to-end tests: the server runs exactly as an admin would run it, from the
`ods` console script beside the test interpreter, configured only through its
environment. Settings inherited from the caller's environment are removed so
that a developer's own ODS configuration cannot leak in.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from ods.core.config import Settings, env_names

ODS = Path(sys.executable).with_name("ods")
START_TIMEOUT = 60.0
START_ATTEMPTS = 3


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_env(data_dir: Path, port: int, admin_password: str, **extra: str) -> dict[str, str]:
    ods_names = {name for field in Settings.model_fields.values() for name in env_names(field)}
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ods_names and key != "ODS_CONF"
    }
    env.update(
        DATA_DIR=str(data_dir),
        ODS_ADMIN_PASSWORD=admin_password,
        ODS_HOST="127.0.0.1",
        ODS_PORT=str(port),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


@dataclass
class OdsServer:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def share_dir(self) -> Path:
        return self.data_dir / "share"

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / "staging"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as in a power cut or the OOM killer."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM and wait for a graceful shutdown; SIGKILL if it takes too long."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def _wait_healthy(server: OdsServer, deadline: float) -> bool:
    """True once /healthz answers 200; False if the process exited first."""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"ods serve did not become healthy:\n{server.output()}")


def start(data_dir: Path, *, admin_password: str, **extra_env: str) -> OdsServer:
    """Start `ods serve` and return once /healthz answers. Another process may take
    the free port between the probe and the bind; then it tries another port."""
    for attempt in range(1, START_ATTEMPTS + 1):
        port = free_port()
        log = data_dir.parent / f"ods-serve-{port}.log"
        env = server_env(data_dir, port, admin_password, **extra_env)
        with log.open("ab") as output:
            process = subprocess.Popen(
                [str(ODS), "serve"], env=env, stdout=output, stderr=subprocess.STDOUT
            )
        server = OdsServer(data_dir=data_dir, port=port, process=process, log=log)
        if _wait_healthy(server, time.monotonic() + START_TIMEOUT):
            return server
        if attempt == START_ATTEMPTS or "address already in use" not in server.output().lower():
            raise RuntimeError(f"ods serve exited at start:\n{server.output()}")
    raise AssertionError("unreachable")


@contextmanager
def serving(data_dir: Path, *, admin_password: str, **extra_env: str) -> Iterator[OdsServer]:
    server = start(data_dir, admin_password=admin_password, **extra_env)
    try:
        yield server
    finally:
        server.stop()
