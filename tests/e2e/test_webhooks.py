"""Webhooks on real `ods serve` processes: each event reaches the webhooks that want it.

Receivers are real HTTP servers on loopback (allowed with ODS_WEBHOOK_ALLOW),
recording each request and checking its signature.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.helpers.notify import SECRET, add_hook, arrived
from tests.helpers.processes.mesh import mesh_of, random_file
from tests.helpers.processes.serve import OdsServer, serving, start
from tests.helpers.receivers.http import Receiver, receiving

pytestmark = pytest.mark.e2e

PASSWORD = "an end-to-end passphrase"
FAST = {"ODS_WEBHOOK_ALLOW": "127.0.0.1", "ODS_WEBHOOK_RETRY_SECONDS": "0.5"}


@contextmanager
def receivers(count: int) -> Iterator[list[Receiver]]:
    with ExitStack() as stack:
        yield [stack.enter_context(receiving(SECRET)) for _ in range(count)]


async def test_each_event_reaches_the_matching_webhooks_on_a_mesh(tmp_path: Path) -> None:
    kinds = [
        "package.uploaded",
        "package.stage_changed",
        "package.deleted",
        "package.available",
        "peer.unreachable",
    ]
    with mesh_of(tmp_path, 2, ODS_RECONCILE_INTERVAL="10", **FAST) as nodes, receivers(6) as got:
        a, b = nodes
        for node in nodes:
            await node.login()
            await node.configure("Dev")
        uploaded, staged, deleted, available, unreachable, nothing = got
        async with a.client() as client:
            await add_hook(client, uploaded, "package.uploaded")
            await add_hook(client, staged, "package.stage_changed")
            await add_hook(client, deleted, "package.deleted")
            await add_hook(client, nothing, "user.deleted")
        async with b.client() as client:
            await add_hook(client, available, "package.available")
            await add_hook(client, unreachable, "peer.unreachable")
        await b.register_with(a)

        source = tmp_path / "Mesh.pkg"
        sha256 = random_file(source, 300_000)
        package = await a.upload(source)
        await arrived(uploaded, 1)
        await arrived(available, 1)
        sent = uploaded.received[0].json
        assert sent["event"] == "package.uploaded"
        assert sent["data"]["uuid"] == package["uuid"]
        assert sent["data"]["sha256"] == sha256
        assert sent["server"]["name"] == a.name
        came = available.received[0].json
        assert came["event"] == "package.available"
        assert came["data"]["filename"] == "Mesh.pkg"
        assert came["data"]["peer"] == a.name
        assert came["server"]["name"] == b.name

        async with a.client() as client:
            moved = await client.patch(
                f"/api/admin/packages/{package['uuid']}", json={"stage": "Test"}
            )
            assert moved.status_code == 200, moved.text
            await arrived(staged, 1)
            assert staged.received[0].json["data"]["previous_stage"] == package["stage"]
            assert staged.received[0].json["data"]["stage"] == "Test"
            gone = await client.delete(f"/api/admin/packages/{package['uuid']}")
            assert gone.status_code == 204, gone.text
        await arrived(deleted, 1)
        assert deleted.received[0].json["data"]["reason"] == "deleted"

        a.stop()
        await arrived(unreachable, 1, seconds=90)
        down = unreachable.received[0].json
        assert down["event"] == "peer.unreachable"
        assert down["data"]["name"] == a.name

    for receiver, kind in zip(got[:5], kinds, strict=True):
        assert set(receiver.events()) == {kind}, (kind, receiver.events())
        assert receiver.bad_signatures == 0
    assert nothing.received == []


async def test_pending_deliveries_survive_kill_9_and_arrive_in_order(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with receiving(SECRET) as receiver:
        receiver.then = 500
        server: OdsServer = start(data_dir, admin_password=PASSWORD, **FAST)
        try:
            async with logged_in(server) as client:
                await add_hook(client, receiver, "package.uploaded")
                for n in range(3):
                    path = tmp_path / f"Kill{n}.pkg"
                    random_file(path, 10_000 + n)
                    with path.open("rb") as handle:
                        answer = await client.post(
                            "/api/admin/upload",
                            files={"file": (path.name, handle)},
                            data={"stage": "Prod"},
                        )
                    assert answer.status_code == 201, answer.text
                await arrived(receiver, 2)
            server.kill()
        finally:
            server.stop()
        assert server.process.returncode == -9
        before = len(receiver.received)
        receiver.then = 200
        with serving(data_dir, admin_password=PASSWORD, **FAST):
            await arrived(receiver, before + 3)
            await asyncio.sleep(2)
        after = [item.json for item in receiver.received[before:]]
    names = [body["data"]["filename"] for body in after]
    assert names == ["Kill0.pkg", "Kill1.pkg", "Kill2.pkg"]
    assert len({body["id"] for body in after}) == 3
    assert receiver.bad_signatures == 0


async def test_loopback_is_refused_unless_allowed(tmp_path: Path) -> None:
    with serving(tmp_path / "data", admin_password=PASSWORD) as server:
        async with logged_in(server) as client:
            for url in ("http://127.0.0.1:9/", "http://169.254.169.254/latest/"):
                answer = await client.post(
                    "/api/admin/webhooks", json={"url": url, "secret": SECRET}
                )
                assert answer.status_code == 422, answer.text
                assert "ODS_WEBHOOK_ALLOW" in answer.json()["message"]


@asynccontextmanager
async def logged_in(server: OdsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        response = await client.post(
            "/api/auth/login", json={"username": "admin", "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        client.headers["Authorization"] = f"Bearer {response.json()['token']}"
        yield client
