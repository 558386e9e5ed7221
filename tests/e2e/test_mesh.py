"""Real `ods serve` processes replicate by push and converge, checked by SHA-256 of /share."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from ods.core import platform
from ods.core.config import Settings
from tests.helpers.packages import MIB
from tests.helpers.processes.mesh import Node, mesh_of, random_file
from tests.helpers.processes.nginx import nginx_in_front_of
from tests.helpers.processes.proxy import StallingProxy
from tests.helpers.tls import self_signed_certificate

pytestmark = pytest.mark.e2e


async def prepare(nodes: list[Node], stages: list[str] | None = None) -> None:
    for node, stage in zip(nodes, stages or ["Dev"] * len(nodes), strict=True):
        await node.login()
        await node.configure(stage)


@pytest.mark.portable
async def test_chain_and_mesh_converge(tmp_path: Path) -> None:
    with mesh_of(tmp_path, 5) as nodes:
        await prepare(nodes)
        a, b, c, d, e = nodes
        for left, right in itertools.pairwise([a, b, c, d]):
            await left.register_with(right)
        for other in (b, c, d):
            await e.register_with(other)
        source = tmp_path / "NoMAD.pkg"
        sha256 = random_file(source, 5 * MIB + 333)
        await a.upload(source)
        for node in (b, c, d, e):
            await node.wait_served("NoMAD.pkg", sha256)
        second = tmp_path / "Office.pkg"
        sha256_second = random_file(second, 3 * MIB)
        await e.upload(second)
        for node in (a, b, c, d):
            await node.wait_served("Office.pkg", sha256_second)
        for node in nodes:
            assert node.server is not None
            # ODS_PORTABLE_IO reaches the servers from this process's environment.
            assert ("Portable I/O: forced" in node.server.output()) is platform.FORCED


async def test_prod_node_takes_no_dev_package(tmp_path: Path) -> None:
    with mesh_of(tmp_path, 2) as nodes:
        await prepare(nodes, ["Dev", "Prod"])
        dev, prod = nodes
        await dev.register_with(prod)
        beta, release = tmp_path / "beta.pkg", tmp_path / "release.pkg"
        beta_sha = random_file(beta, MIB)
        release_sha = random_file(release, MIB)
        await dev.upload(beta, stage="Dev")
        await dev.upload(release, stage="Prod")
        await prod.wait_served("release.pkg", release_sha)
        assert await prod.package("beta.pkg") is None

        async with dev.client() as client:
            promoted = await client.patch("/api/admin/packages/beta.pkg", json={"stage": "Prod"})
        assert promoted.status_code == 200, promoted.text
        await prod.wait_served("beta.pkg", beta_sha)
        package = await prod.package("beta.pkg")
        assert package is not None
        assert package["stage"] == "Prod"


def kernel_buffer_limit(name: str) -> int:
    """The most the kernel grows a TCP buffer to by itself (tcp_rmem or tcp_wmem)."""
    return int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[2])


@pytest.mark.portable
async def test_a_killed_receiver_resumes_without_refetching(tmp_path: Path) -> None:
    size = 256 * MIB
    killed_at = 96 * MIB
    with mesh_of(tmp_path, 2) as nodes:
        await prepare(nodes)
        source, receiver = nodes
        await source.register_with(receiver)
        path = tmp_path / "big.dmg"
        sha256 = random_file(path, size)
        await source.upload(path)
        deadline = time.monotonic() + 60
        while await source.metric("ods_bytes_served_total", {"to": "peers"}) < killed_at:
            assert time.monotonic() < deadline, "the receiver never started fetching"
            await asyncio.sleep(0.01)
        receiver.kill()
        sent_before_restart = await source.metric("ods_bytes_served_total", {"to": "peers"})
        assert sent_before_restart < size, "the download finished before the kill"
        receiver.start()
        await receiver.wait_served("big.dmg", sha256, seconds=120)
        total = await source.metric("ods_bytes_served_total", {"to": "peers"})
        # What was in flight when the receiver died is fetched again: on each
        # connection the chunk it was receiving, its receive buffer (capped
        # for a near peer) and the source's unsent write, under 4 MiB. The
        # rest of the 96 MiB it had is not.
        in_flight = 4 * MIB
        if platform.FORCED:
            # No cap and no unsent limit: the kernel may fill both buffers.
            in_flight = kernel_buffer_limit("tcp_rmem") + kernel_buffer_limit("tcp_wmem") + 2 * MIB
        connections = Settings.model_fields["fetch_parallel_chunks"].default
        assert total <= size + connections * in_flight, f"{total - size} bytes fetched twice"


async def test_a_node_down_during_an_upload_catches_up_when_it_returns(tmp_path: Path) -> None:
    with mesh_of(tmp_path, 3) as nodes:
        await prepare(nodes)
        a, b, c = nodes
        await a.register_with(b)
        await b.register_with(c)
        c.stop()
        path = tmp_path / "Zoom.pkg"
        sha256 = random_file(path, 2 * MIB + 17)
        await a.upload(path)
        await b.wait_served("Zoom.pkg", sha256)
        c.start()
        await c.wait_served("Zoom.pkg", sha256)


async def test_a_stalled_source_is_abandoned_and_the_fetch_retried(tmp_path: Path) -> None:
    with mesh_of(tmp_path, 2, ODS_FETCH_STALL_SECONDS="1") as nodes:
        await prepare(nodes)
        source, receiver = nodes
        # The receiver reaches the source through a link that goes quiet after
        # 3 MiB of answers: the connection stays open, nothing more comes.
        async with StallingProxy(source.port, stall_after=3 * MIB) as link:
            await receiver.register_with(source, url=link.url)
            path = tmp_path / "stalled.pkg"
            sha256 = random_file(path, 16 * MIB)
            await source.upload(path)
            await asyncio.wait_for(link.stalled.wait(), 30)
            deadline = time.monotonic() + 30
            while "timed out" not in str(await receiver.peer_state(source, "last_error")):
                assert time.monotonic() < deadline, "the stalled source was never abandoned"
                await asyncio.sleep(0.2)
            package = await receiver.package("stalled.pkg")
            assert package is not None
            assert package["status"] == "Downloading"
            link.stalling = False
            await receiver.wait_served("stalled.pkg", sha256, seconds=60)


async def test_conflicting_uploads_converge_on_one_winner_everywhere(tmp_path: Path) -> None:
    with mesh_of(tmp_path, 4) as nodes:
        await prepare(nodes)
        a, b, c, d = nodes
        # Two halves of the mesh, each taking its own upload of one filename.
        await a.register_with(b)
        await c.register_with(d)
        first, second = tmp_path / "first", tmp_path / "second"
        first.mkdir()
        second.mkdir()
        random_file(first / "Same.pkg", 3 * MIB)
        newer_sha256 = random_file(second / "Same.pkg", 2 * MIB + 5)
        older = await a.upload(first / "Same.pkg")
        await b.wait_served("Same.pkg", str(older["sha256"]))
        await asyncio.sleep(1.1)  # upload times have one-second resolution
        newer = await d.upload(second / "Same.pkg")
        await c.wait_served("Same.pkg", newer_sha256)

        # The partition heals: the newer upload wins on every server.
        await b.register_with(c)
        for node in nodes:
            await node.wait_served("Same.pkg", newer_sha256)
            package = await node.package("Same.pkg")
            assert package is not None
            assert package["uuid"] == newer["uuid"]
        for node in (a, b):
            async with node.client() as client:
                conflicts = (
                    await client.get("/api/admin/events", params={"kind": "package.conflict"})
                ).json()["items"]
            assert any(event["package_uuid"] == older["uuid"] for event in conflicts), node.name


async def test_a_firewalled_node_converges_by_polling(tmp_path: Path) -> None:
    with mesh_of(tmp_path, 2, ODS_POLL_INTERVAL="5") as nodes:
        await prepare(nodes)
        hub, hidden = nodes
        async with hidden.client() as client:
            update = await client.post(
                "/api/admin/about/update", json={"firewalled_mode": "Enabled"}
            )
        assert update.status_code == 201, update.text
        await hidden.register_with(hub)
        path = tmp_path / "polled.pkg"
        sha256 = random_file(path, 2 * MIB)
        await hub.upload(path)
        await hidden.wait_served("polled.pkg", sha256, seconds=30)
        assert await hub.metric("ods_bytes_served_total", {"to": "peers"}) >= 2 * MIB
        notified = [
            await hub.metric("ods_jobs_total", {"kind": "notify", "outcome": outcome})
            for outcome in ("done", "retry", "failed")
        ]
        assert notified == [0, 0, 0], "the hub tried to push to a firewalled node"


async def test_a_corrupt_source_is_caught_and_never_published(tmp_path: Path) -> None:
    with mesh_of(tmp_path, 3) as nodes:
        await prepare(nodes)
        source, good, receiver = nodes
        await source.register_with(good)
        path = tmp_path / "fragile.pkg"
        sha256 = random_file(path, 4 * MIB)
        await source.upload(path)
        await good.wait_served("fragile.pkg", sha256)
        assert source.server is not None
        with (source.server.share_dir / "fragile.pkg").open("r+b") as handle:
            handle.seek(2 * MIB + 100)
            handle.write(b"flipped by a failing disk")

        await receiver.register_with(source)
        deadline = time.monotonic() + 30
        while await source.metric("ods_bytes_served_total", {"to": "peers"}) < 8 * MIB:
            assert time.monotonic() < deadline, "the receiver never fetched from the source"
            await asyncio.sleep(0.1)
        package = await receiver.package("fragile.pkg")
        assert package is not None
        assert package["status"] in ("Downloading", "Failed")
        assert await receiver.served_sha256("fragile.pkg") is None

        await receiver.register_with(good)
        await receiver.wait_served("fragile.pkg", sha256, seconds=60)


async def test_a_peer_behind_nginx_is_fetched_from_over_https(tmp_path: Path) -> None:
    """The shipped Nginx config with TLS in front of the source; the receiver trusts its CA."""
    cert, key = self_signed_certificate(tmp_path)
    with mesh_of(tmp_path, 2, SSL_CERT_FILE=str(cert)) as nodes:
        await prepare(nodes)
        source, receiver = nodes
        with nginx_in_front_of(
            source.port, source.data_dir, cert, key, tmp_path / "nginx"
        ) as nginx:
            await receiver.register_with(source, url=nginx.url)
            path = tmp_path / "Office.pkg"
            sha256 = random_file(path, 40 * MIB + 5)
            await source.upload(path)
            await receiver.wait_served("Office.pkg", sha256, seconds=60)
            # The manifest and the chunk runs went through Nginx, over TLS.
            log = nginx.access_log()
            assert "GET /api/ods/packages/" in log
            assert '/chunks?start=0&count=32 HTTP/1.1" 200' in log
