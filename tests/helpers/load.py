"""A load run on one real `ods serve`: many clients at once, each a keep-alive connection
that lists, reads details, downloads from /share and uploads (then deletes what it
uploaded), for a fixed time. Every answer is counted by operation and status, every
latency kept, the server's RSS sampled. Shared by the bounded test in the suite and
`bench/load.py`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import ssl
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from tests.helpers.processes.mesh import PASSWORD, Node, mesh_of
from tests.helpers.processes.serve import ODS, free_port, server_env
from tests.helpers.services import SERVERS

KIB = 1024
MIB = 1024 * KIB
OPERATIONS = ("list", "details", "download", "upload", "delete")
# How often each client picks each operation (an upload is followed by a delete later).
WEIGHTS = {"list": 3, "details": 3, "download": 3, "upload": 1}
EXPECTED = {"list": {200}, "details": {200}, "download": {200}, "upload": {201}, "delete": {204}}


@dataclass
class LoadReport:
    backend: str
    clients: int
    seconds: float
    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {name: [] for name in OPERATIONS}
    )
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    peak_rss: int = 0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(count for (_, status), count in self.statuses.items() if status >= 500)

    def percentile(self, operation: str, fraction: float) -> float:
        values = sorted(self.latencies[operation])
        if not values:
            return 0.0
        return values[min(len(values) - 1, int(fraction * len(values)))]

    def record(self, operation: str, started: float, response: httpx.Response) -> None:
        self.latencies[operation].append(time.perf_counter() - started)
        self.statuses[(operation, response.status_code)] += 1
        if response.status_code not in EXPECTED[operation] and len(self.unexpected) < 20:
            self.unexpected.append(f"{operation}: {response.status_code} {response.text[:200]}")


class Client:
    def __init__(
        self, number: int, node: Node, names: list[str], report: LoadReport, tls: ssl.SSLContext
    ) -> None:
        self.number = number
        self.names = names
        self.report = report
        self.rng = random.Random(number)
        self.http = httpx.AsyncClient(
            base_url=node.url,
            headers={"Authorization": f"Bearer {node.token}"},
            timeout=120,
            limits=httpx.Limits(max_connections=1),
            verify=tls,  # one context for all: making one per client takes ~50 ms
        )
        self.uploaded: list[str] = []
        self.count = 0

    async def run(self, ends: float) -> None:
        async with self.http:
            while time.monotonic() < ends:
                operation = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
                try:
                    await self.step(operation)
                except httpx.TransportError as exc:
                    self.report.transport_errors[f"{operation}: {type(exc).__name__}"] += 1
            for name in self.uploaded:
                with contextlib.suppress(httpx.TransportError):
                    await self.timed("delete", "DELETE", f"/api/admin/packages/{name}")

    async def timed(self, operation: str, method: str, url: str, **kwargs: object) -> None:
        started = time.perf_counter()
        async with self.http.stream(method, url, **kwargs) as response:  # type: ignore[arg-type]
            await response.aread()
        self.report.record(operation, started, response)

    async def step(self, operation: str) -> None:
        if operation == "list":
            await self.timed("list", "GET", "/api/admin/packages", params={"limit": 100})
        elif operation == "details":
            await self.timed("details", "GET", f"/api/admin/packages/{self.rng.choice(self.names)}")
        elif operation == "download":
            await self.timed("download", "GET", f"/share/{self.rng.choice(self.names)}")
        else:
            if len(self.uploaded) >= 2:
                name = self.uploaded.pop(0)
                await self.timed("delete", "DELETE", f"/api/admin/packages/{name}")
            self.count += 1
            name = f"Load-{self.number}-{self.count}.pkg"
            body = os.urandom(256 * KIB)
            await self.timed(
                "upload",
                "POST",
                "/api/admin/upload",
                files={"file": (name, body)},
                data={"stage": "Prod"},
            )
            self.uploaded.append(name)


async def sample_rss(pid: int, report: LoadReport, stop: asyncio.Event) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        with contextlib.suppress(psutil.Error):
            report.peak_rss = max(report.peak_rss, process.memory_info().rss)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)


@asynccontextmanager
async def database_for(backend: str) -> AsyncIterator[str | None]:
    """None for SQLite (in the data dir); else a fresh database on a real MariaDB or
    PostgreSQL started for the run."""
    if backend == "sqlite":
        yield None
        return
    with SERVERS[backend]() as server:
        async with server.fresh_database() as url:
            yield url


@asynccontextmanager
async def server_on(root: Path, database_url: str | None) -> AsyncIterator[Node]:
    """One `ods serve`, logged in, on SQLite or on the database at `database_url` (its
    schema made first with `ods db upgrade`, as docs/install.md has it)."""
    env = {"DATABASE_URL": database_url} if database_url else {}
    if database_url:
        await asyncio.to_thread(
            subprocess.run,
            [str(ODS), "db", "upgrade"],
            env=server_env(root / "ods-0", free_port(), PASSWORD, **env),
            check=True,
            capture_output=True,
        )
    with mesh_of(root, 1, **env) as (node,):
        await node.login()
        yield node


def seed_files(root: Path, count: int, size: int) -> Iterator[Path]:
    for number in range(count):
        path = root / "seed" / f"Seed-{number}.pkg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        yield path


async def run_load(
    root: Path,
    *,
    backend: str = "sqlite",
    database_url: str | None = None,
    clients: int = 200,
    seconds: float = 30.0,
    packages: int = 20,
    package_size: int = MIB,
) -> LoadReport:
    report = LoadReport(backend=backend, clients=clients, seconds=seconds)
    async with server_on(root, database_url) as node:
        names = []
        for path in seed_files(root, packages, package_size):
            await node.upload(path)
            names.append(path.name)
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(node.pid, report, stop))
        tls = ssl.create_default_context()
        runners = [Client(number, node, names, report, tls) for number in range(clients)]
        ends = time.monotonic() + seconds
        await asyncio.gather(*(runner.run(ends) for runner in runners))
        stop.set()
        await sampler
    return report
