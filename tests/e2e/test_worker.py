"""With REDIS_URL, `ods serve` queues jobs on Redis and real `ods worker` processes run them."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.packages import MIB
from tests.helpers.processes.mesh import PASSWORD, Node, mesh_of, random_file
from tests.helpers.processes.proxy import DripProxy
from tests.helpers.processes.redis_server import redis_server
from tests.helpers.processes.serve import ODS, server_env

pytestmark = pytest.mark.e2e


def start_worker(node: Node) -> subprocess.Popen[bytes]:
    env = server_env(node.data_dir, node.port, PASSWORD, **node.extra_env)
    log = node.data_dir.parent / f"{node.name}-worker.log"
    with log.open("ab") as output:
        return subprocess.Popen([str(ODS), "worker"], env=env, stdout=output, stderr=output)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


async def test_workers_run_the_replication_jobs(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis") as url, mesh_of(tmp_path, 2) as nodes:
        source, receiver = nodes
        for index, node in enumerate(nodes):
            node.extra_env["REDIS_URL"] = f"{url}/{index}"
            node.stop()
            node.start()
            await node.login()
            await node.configure("Dev")
        await source.register_with(receiver)
        workers = [start_worker(source)]
        try:
            path = tmp_path / "Firefox.pkg"
            sha256 = random_file(path, 3 * MIB + 1)
            await source.upload(path)
            # No worker for the receiver yet: the fetch waits, Redis and the database keep it.
            await asyncio.sleep(2)
            assert await receiver.served_sha256("Firefox.pkg") is None
            workers.append(start_worker(receiver))
            await receiver.wait_served("Firefox.pkg", sha256)
        finally:
            for worker in workers:
                stop(worker)


async def test_a_worker_runs_one_peers_jobs_only_up_to_its_share(tmp_path: Path) -> None:
    """With ODS_PEER_JOB_LIMIT=1, a second fetch from a peer whose first one trickles waits
    (arq runs its entry again later) and runs once the rate floor drops the first."""
    with redis_server(tmp_path / "redis") as url, mesh_of(tmp_path, 2) as nodes:
        source, receiver = nodes
        receiver.extra_env.update(ODS_PEER_JOB_LIMIT="1", ODS_FETCH_STALL_SECONDS="3")
        for index, node in enumerate(nodes):
            node.extra_env["REDIS_URL"] = f"{url}/{index}"
            node.stop()
            node.start()
            await node.login()
            await node.configure("Dev")
        workers = [start_worker(source), start_worker(receiver)]
        try:
            async with DripProxy(source.port, seconds_per_byte=1.0) as link:
                await receiver.register_with(source, url=link.url)
                for name in ("First.pkg", "Second.pkg"):
                    random_file(tmp_path / name, 64 * 1024)
                    await source.upload(tmp_path / name)
                # Both fetches get their turn in time (a dropped first fetch may go
                # again before the second), never both at once.
                deadline = time.monotonic() + 60
                while True:
                    packages = [await receiver.package(n) for n in ("First.pkg", "Second.pkg")]
                    if all(packages):
                        break
                    assert time.monotonic() < deadline, "the second fetch never ran"
                    await asyncio.sleep(0.2)
                assert link.dripped >= 2
                assert link.most_dripping == 1
                log = (tmp_path / f"{receiver.name}-worker.log").read_text()
                assert "retrying job in" in log  # a fetch waited for its turn
                for package in packages:
                    assert package is not None
                    assert package["status"] == "Downloading"
        finally:
            for worker in workers:
                stop(worker)


def test_worker_without_redis_says_so(tmp_path: Path) -> None:
    node = Node("lonely", tmp_path / "lonely", 1)
    env = server_env(node.data_dir, node.port, PASSWORD)
    result = subprocess.run(
        [str(ODS), "worker"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith("ods: configuration error: REDIS_URL:")
    assert "Traceback" not in result.stderr
