"""Work in flight belongs to the process doing it: starting others never takes it away,
and a process killed mid-job has its job taken over from where it was.

Real processes on one data dir and one SQLite database: `ods serve`s, `ods
worker`s and a redis-server.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from tests.helpers.packages import BOUNDARY, CONTENT_TYPE, MIB, content_of
from tests.helpers.processes.mesh import PASSWORD, Node, mesh_of, random_file, wait_for
from tests.helpers.processes.proxy import ThrottledProxy
from tests.helpers.processes.redis_server import redis_server
from tests.helpers.processes.serve import ODS, OdsServer, free_port, server_env, start

pytestmark = pytest.mark.e2e

UPLOAD_MIB = 24


def start_worker(data_dir: Path, log: Path, **extra_env: str) -> subprocess.Popen[bytes]:
    env = server_env(data_dir, free_port(), PASSWORD, **extra_env)
    with log.open("ab") as output:
        return subprocess.Popen([str(ODS), "worker"], env=env, stdout=output, stderr=output)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=30)


def says(log: Path, text: str) -> bool:
    return log.exists() and text in log.read_text(errors="replace")


async def worker_ready(log: Path, seconds: float = 60) -> None:
    async def ready() -> bool:
        return await asyncio.to_thread(says, log, "worker ready")

    await wait_for(f"the worker logging to {log.name} to be ready", seconds, ready)


async def slow_upload(others_started: asyncio.Event) -> AsyncIterator[bytes]:
    """A multipart body that streams a steady trickle until `others_started` is set,
    then sends the rest of UPLOAD_MIB."""
    yield (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="Slow.pkg"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    for index in range(UPLOAD_MIB):
        block = content_of(MIB, seed=index)
        for start_at in range(0, MIB, 64 * 1024):
            yield block[start_at : start_at + 64 * 1024]
            if not others_started.is_set():
                await asyncio.sleep(0.1)
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def expected_sha256() -> str:
    digest = hashlib.sha256()
    for index in range(UPLOAD_MIB):
        digest.update(content_of(MIB, seed=index))
    return digest.hexdigest()


async def test_a_server_and_a_worker_started_during_an_upload_leave_it_alone(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with redis_server(tmp_path / "redis") as url:
        first = start(data_dir, admin_password=PASSWORD, REDIS_URL=url)
        others: list[OdsServer] = []
        worker_log = tmp_path / "worker.log"
        workers: list[subprocess.Popen[bytes]] = []
        try:
            async with httpx.AsyncClient(base_url=first.url, timeout=120) as client:
                login = await client.post(
                    "/api/auth/login", json={"username": "admin", "password": PASSWORD}
                )
                client.headers["Authorization"] = f"Bearer {login.json()['token']}"
                others_started = asyncio.Event()

                async def start_others() -> None:
                    staged = data_dir / "staging"

                    async def streaming() -> bool:
                        return any(staged.glob("upload-*.part"))

                    await wait_for("the upload to reach staging", 30, streaming)
                    others.append(
                        await asyncio.to_thread(
                            start, data_dir, admin_password=PASSWORD, REDIS_URL=url
                        )
                    )
                    workers.append(start_worker(data_dir, worker_log, REDIS_URL=url))
                    await worker_ready(worker_log)
                    # Both have run their start-up recovery; the upload is still streaming.
                    assert [p.name for p in staged.glob("upload-*.part")] != []
                    others_started.set()

                starter = asyncio.create_task(start_others())
                response = await client.post(
                    "/api/admin/upload",
                    content=slow_upload(others_started),
                    headers={"Content-Type": CONTENT_TYPE},
                )
                await starter
                assert response.status_code == 201, response.text
                assert response.json()["status"] == "Public"
                assert response.json()["sha256"] == expected_sha256()
                # Every process sees it Public and serves it.
                for server in (first, *others):
                    package = await client.get(f"{server.url}/api/admin/packages/Slow.pkg")
                    assert package.json()["status"] == "Public"
                    served = await client.get(f"{server.url}/share/Slow.pkg")
                    assert hashlib.sha256(served.content).hexdigest() == expected_sha256()
                assert list((data_dir / "staging").glob("upload-*.part")) == []
        finally:
            for worker in workers:
                stop(worker)
            for server in (*others, first):
                server.stop()
        logs = [first.output(), *(s.output() for s in others), worker_log.read_text()]
        for text in logs:
            assert "removing" not in text
            assert "Traceback" not in text


FETCH_MIB = 16
# The throttled link: slow until the kill (a minute for the whole file, however
# long the second worker takes to start), then fast for the worker that takes over.
SLOW = 256 * 1024
FAST = 4 * MIB


@pytest.mark.timeout(240)
async def test_a_worker_killed_mid_fetch_is_taken_over_from_its_kept_chunks(
    tmp_path: Path,
) -> None:
    with redis_server(tmp_path / "redis") as url, mesh_of(tmp_path, 2) as nodes:
        source, receiver = nodes
        receiver.extra_env["REDIS_URL"] = url
        receiver.stop()
        receiver.start()
        for node in nodes:
            await node.login()
            await node.configure("Dev")
        logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
        env = {"REDIS_URL": url}
        first = start_worker(receiver.data_dir, logs[0], **env)
        workers = [first]
        try:
            await worker_ready(logs[0])
            async with ThrottledProxy(source.port, SLOW) as link:
                await receiver.register_with(source, url=link.url)
                path = tmp_path / "Big.pkg"
                sha256 = random_file(path, FETCH_MIB * MIB + 3)
                await source.upload(path)
                await wait_for("4 chunks fetched", 60, chunks_done_at_least(receiver, 4))
                # A second worker starting now leaves the running fetch alone.
                workers.append(start_worker(receiver.data_dir, logs[1], **env))
                await worker_ready(logs[1])
                before = await chunks_done(receiver)
                await wait_for("the fetch to go on", 30, chunks_done_at_least(receiver, before + 1))
                assert "Big.pkg" not in logs[1].read_text()

                first.kill()
                first.wait(timeout=30)
                link.bytes_per_second = FAST
                killed_at = time.monotonic()
                kept = await chunks_done(receiver)
                passed_at_kill = link.passed
                await receiver.wait_served("Big.pkg", sha256, seconds=60)
                took = time.monotonic() - killed_at
                print(f"\ntaken over and finished {took:.1f} s after the kill")
                assert took < 60
                refetched = link.passed - passed_at_kill
                assert refetched <= (FETCH_MIB - kept + 2) * MIB, (kept, refetched)
            worker_b = logs[1].read_text()
            assert "fetched Big.pkg" in worker_b
            assert "Traceback" not in worker_b
            server_log = receiver.server.output() if receiver.server else ""
            assert "took over job fetch:" in server_log or "took over job" in worker_b
        except AssertionError:
            for log in logs:
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
            raise
        finally:
            for worker in workers:
                stop(worker)


async def chunks_done(node: Node) -> int:
    package = await node.package("Big.pkg")
    if package is None or not isinstance(package.get("progress"), dict):
        return 0
    progress = package["progress"]
    assert isinstance(progress, dict)
    return int(progress["chunks_done"])


def chunks_done_at_least(node: Node, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await chunks_done(node) >= count

    return check
