"""A mesh of real `ods serve` processes on loopback, each with its own data dir and port.

A node keeps its port across restarts, as a real server keeps its address, so
its peers find it again.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.processes.serve import ODS, OdsServer, _wait_healthy, free_port, server_env

PASSWORD = "an end-to-end passphrase"


@dataclass
class Node:
    name: str
    data_dir: Path
    port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    server: OdsServer | None = None
    token: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.data_dir.parent / f"{self.name}.log"
        env = server_env(self.data_dir, self.port, PASSWORD, **self.extra_env)
        with log.open("ab") as output:
            process = subprocess.Popen(
                [str(ODS), "serve"], env=env, stdout=output, stderr=subprocess.STDOUT
            )
        self.server = OdsServer(self.data_dir, self.port, process, log)
        if not _wait_healthy(self.server, time.monotonic() + 60):
            raise RuntimeError(f"{self.name} did not start:\n{self.server.output()}")

    def kill(self) -> None:
        assert self.server is not None
        self.server.kill()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=60)

    async def login(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            response = await client.post(
                "/api/auth/login", json={"username": "admin", "password": PASSWORD}
            )
        assert response.status_code == 200, response.text
        self.token = response.json()["token"]

    async def configure(self, stage: str) -> None:
        async with self.client() as client:
            response = await client.post(
                "/api/admin/about/update", json={"name": self.name, "url": self.url, "stage": stage}
            )
        assert response.status_code == 201, response.text

    async def register_with(self, other: Node, url: str | None = None) -> None:
        """Register with `other`, reached at `url` (its own address by default)."""
        async with other.client() as client:
            about = (await client.get("/api/admin/about")).json()
        async with self.client() as client:
            response = await client.post(
                "/api/admin/register",
                json={"url": url or other.url, "iss_id": about["iss"], "key": about["key"]},
            )
        assert response.status_code == 201, response.text

    @property
    def pid(self) -> int:
        assert self.server is not None
        return self.server.process.pid

    async def about(self) -> dict[str, str]:
        """This node's iss and registration key (its About page), and the rest of it."""
        async with self.client() as client:
            response = await client.get("/api/admin/about")
        assert response.status_code == 200, response.text
        body: dict[str, str] = response.json()
        return body

    async def events(self, kind: str) -> list[dict[str, Any]]:
        """The node's events of one kind, newest first."""
        async with self.client() as client:
            response = await client.get("/api/admin/events", params={"kind": kind})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def packages(self) -> list[dict[str, Any]]:
        """Every package row of the node, in any status."""
        async with self.client() as client:
            response = await client.get("/api/admin/packages")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def peer_state(self, other: Node, field: str) -> object:
        """One field of this node's record of `other` in GET /api/admin/registered_ods."""
        return (await self.peer_record(other.name))[field]

    async def peer_record(self, name: str) -> dict[str, Any]:
        """This node's record of its peer called `name` in GET /api/admin/registered_ods."""
        async with self.client() as client:
            response = await client.get("/api/admin/registered_ods")
        assert response.status_code == 200, response.text
        for item in response.json()["items"]:
            if item["name"] == name:
                found: dict[str, Any] = item
                return found
        raise AssertionError(f"{self.name} has no peer named {name}")

    async def upload(
        self, path: Path, stage: str = "Prod", *, replace: bool = False
    ) -> dict[str, object]:
        form = {"stage": stage} | ({"replace": "true"} if replace else {})
        async with self.client() as client:
            with path.open("rb") as handle:
                response = await client.post(
                    "/api/admin/upload", files={"file": (path.name, handle)}, data=form
                )
        assert response.status_code == 201, response.text
        body: dict[str, object] = response.json()
        return body

    async def package(self, filename: str) -> dict[str, object] | None:
        async with self.client() as client:
            response = await client.get(f"/api/admin/packages/{filename}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    async def served_sha256(self, filename: str) -> str | None:
        digest = hashlib.sha256()
        async with (
            httpx.AsyncClient(base_url=self.url, timeout=60) as client,
            client.stream("GET", f"/share/{filename}") as response,
        ):
            if response.status_code != 200:
                return None
            async for part in response.aiter_bytes():
                digest.update(part)
        return digest.hexdigest()

    async def metric(self, name: str, labels: dict[str, str]) -> float:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            text = (await client.get("/metrics")).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return sample.value
        return 0.0

    async def wait_served(self, filename: str, sha256: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while await self.served_sha256(filename) != sha256:
            if time.monotonic() > deadline:
                package = await self.package(filename)
                raise AssertionError(f"{filename} not served by {self.name}: {package}")
            await asyncio.sleep(0.1)


@contextmanager
def mesh_of(root: Path, count: int, **extra_env: str) -> Iterator[list[Node]]:
    nodes = [
        Node(f"ods-{i}", root / f"ods-{i}", free_port(), dict(extra_env)) for i in range(count)
    ]
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def random_file(path: Path, size: int) -> str:
    """Write `size` pseudo-random bytes; return their SHA-256."""
    digest = hashlib.sha256()
    block = hashlib.sha256(path.name.encode()).digest() * (1024 * 1024 // 32)
    counter = 0
    with path.open("wb") as handle:
        remaining = size
        while remaining:
            counter += 1
            part = counter.to_bytes(8, "big") + block[8 : min(len(block), remaining)]
            part = part[:remaining]
            handle.write(part)
            digest.update(part)
            remaining -= len(part)
    return digest.hexdigest()


async def wait_for(what: str, seconds: float, check: Callable[[], Awaitable[bool]]) -> None:
    """Wait until `check()` holds; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
