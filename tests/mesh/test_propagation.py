"""Propagation through in-process meshes: push, verify, publish, relay."""

from __future__ import annotations

import asyncio
import hashlib
import os

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.mesh import Mesh, Node, link_all, served_sha256, wait_public
from tests.helpers.packages import uploaded

pytestmark = pytest.mark.portable


async def test_a_package_reaches_a_peer_byte_for_byte(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await link_all([a, b])
    data = os.urandom(3 * 1024 * 1024 + 12345)
    sent = await uploaded(a.admin, "NoMAD.pkg", data)
    got = await wait_public(b, "NoMAD.pkg")
    assert got["uuid"] == sent["uuid"]
    assert got["sha1"] == hashlib.sha1(data, usedforsecurity=False).hexdigest()
    assert await served_sha256(b, "NoMAD.pkg") == hashlib.sha256(data).hexdigest()
    chunks = (await b.admin.get("/api/admin/packages/NoMAD.pkg")).json()["chunks"]
    assert len(chunks) == 4


async def test_every_server_gives_a_version_the_same_validators(mesh: Mesh) -> None:
    """ETag and Last-Modified agree across the mesh (the file's time is the origin's
    creation time), so a Mac that resumes from another server with `If-Range` gets
    the rest of the file, not all of it again."""
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await link_all([a, b])
    data = os.urandom(1024 * 1024 + 99)
    await uploaded(a.admin, "resume.pkg", data)
    await wait_public(b, "resume.pkg")
    await asyncio.sleep(1.1)  # a file published now would have another Last-Modified
    first = await a.admin.get("/share/resume.pkg", headers={"Range": "bytes=0-999"})
    validators = (first.headers["etag"], first.headers["last-modified"])
    assert first.status_code == 206
    there = await b.admin.head("/share/resume.pkg")
    assert (there.headers["etag"], there.headers["last-modified"]) == validators
    for validator in validators:
        rest = await b.admin.get(
            "/share/resume.pkg", headers={"Range": "bytes=1000-", "If-Range": validator}
        )
        assert rest.status_code == 206
        assert first.content + rest.content == data


async def test_a_chain_relays_to_the_end(mesh: Mesh) -> None:
    nodes = [await mesh.add(f"ods-{i}") for i in range(4)]
    await link_all(nodes)
    data = os.urandom(1024 * 1024 + 7)
    await uploaded(nodes[0].admin, "chain.pkg", data)
    for node in nodes[1:]:
        await wait_public(node, "chain.pkg")
        assert await served_sha256(node, "chain.pkg") == hashlib.sha256(data).hexdigest()


async def test_a_prod_server_does_not_take_a_dev_package(mesh: Mesh) -> None:
    a = await mesh.add("ods-a", stage="Dev")
    b = await mesh.add("ods-b", stage="Prod")
    await link_all([a, b])
    await uploaded(a.admin, "beta.pkg", b"dev build", stage="Dev")
    await uploaded(a.admin, "release.pkg", b"prod build", stage="Prod")
    await wait_public(b, "release.pkg")
    assert (await b.admin.get("/api/admin/packages/beta.pkg")).status_code == 404


async def test_metrics_count_chunk_bytes_and_jobs(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await link_all([a, b])
    data = os.urandom(2 * 1024 * 1024 + 5)
    await uploaded(a.admin, "metered.pkg", data)
    await wait_public(b, "metered.pkg")
    served = await metric(a, "ods_bytes_served_total", {"to": "peers"})
    assert served == len(data)
    for _ in range(100):
        try:
            done = await metric(b, "ods_jobs_total", {"kind": "fetch", "outcome": "done"})
            break
        except AssertionError:
            await asyncio.sleep(0.05)
    assert done == 1


async def metric(node: Node, name: str, labels: dict[str, str]) -> float:
    text = (await node.admin.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    raise AssertionError(f"{name}{labels} not in /metrics on {node.name}")


async def test_promotion_reaches_servers_that_now_accept(mesh: Mesh) -> None:
    dev = await mesh.add("ods-dev", stage="Dev")
    test = await mesh.add("ods-test", stage="Test")
    prod = await mesh.add("ods-prod", stage="Prod")
    await link_all([dev, test, prod])
    await uploaded(dev.admin, "app.pkg", b"candidate build", stage="Dev")
    await asyncio.sleep(0.5)
    assert (await test.admin.get("/api/admin/packages/app.pkg")).status_code == 404

    promoted = await dev.admin.patch("/api/admin/packages/app.pkg", json={"stage": "Test"})
    assert promoted.status_code == 200, promoted.text
    assert (await wait_public(test, "app.pkg"))["stage"] == "Test"
    await asyncio.sleep(0.5)
    assert (await prod.admin.get("/api/admin/packages/app.pkg")).status_code == 404

    assert (
        await dev.admin.patch("/api/admin/packages/app.pkg", json={"stage": "Prod"})
    ).status_code == 200
    assert (await wait_public(prod, "app.pkg"))["stage"] == "Prod"
    for _ in range(100):
        if (await test.admin.get("/api/admin/packages/app.pkg")).json()["stage"] == "Prod":
            break
        await asyncio.sleep(0.05)
    assert (await test.admin.get("/api/admin/packages/app.pkg")).json()["stage"] == "Prod"


async def test_a_firewalled_server_is_not_pushed_to_and_polls(mesh: Mesh) -> None:
    hub = await mesh.add("ods-hub")
    hidden = await mesh.add("ods-hidden", poll_interval=5)
    update = await hidden.admin.post("/api/admin/about/update", json={"firewalled_mode": "Enabled"})
    assert update.status_code == 201
    assert (await hidden.register_with(hub)).status_code == 201
    hub_peers = (await hub.admin.get("/api/admin/registered_ods")).json()["items"]
    assert hub_peers[0]["firewalled_mode"] is True

    data = os.urandom(1024 * 1024 + 1)
    await uploaded(hub.admin, "pushed.pkg", data)
    jobs = (await hub.admin.get("/metrics")).text
    assert 'kind="notify"' not in jobs
    got = await wait_public(hidden, "pushed.pkg", within=30)
    assert got["sha256"] == hashlib.sha256(data).hexdigest()


async def test_a_corrupt_source_is_caught_and_another_peer_serves(mesh: Mesh) -> None:
    source = await mesh.add("ods-source")
    good = await mesh.add("ods-good")
    receiver = await mesh.add("ods-receiver")
    assert (await source.register_with(good)).status_code == 201
    data = os.urandom(3 * 1024 * 1024)
    await uploaded(source.admin, "fixed.pkg", data)
    await wait_public(good, "fixed.pkg")
    published = source.context.files.published("fixed.pkg")
    with published.open("r+b") as handle:
        handle.seek(1024 * 1024 + 10)
        handle.write(b"corrupted by a failing disk")
    served_before = await metric(source, "ods_bytes_served_total", {"to": "peers"})

    # The receiver first knows only the corrupt source, and fetches from it.
    assert (await receiver.register_with(source)).status_code == 201
    for _ in range(200):
        served = await metric(source, "ods_bytes_served_total", {"to": "peers"})
        if served - served_before >= 2 * 1024 * 1024:
            break
        await asyncio.sleep(0.05)
    assert served - served_before >= 2 * 1024 * 1024, "the receiver never fetched from the source"
    package = (await receiver.admin.get("/api/admin/packages/fixed.pkg")).json()
    assert package["status"] != "Public"

    assert (await receiver.register_with(good)).status_code == 201
    got = await wait_public(receiver, "fixed.pkg", within=30)
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    assert await served_sha256(receiver, "fixed.pkg") == hashlib.sha256(data).hexdigest()


async def test_a_corrupt_only_source_never_gets_published(mesh: Mesh) -> None:
    source = await mesh.add("ods-source")
    receiver = await mesh.add("ods-receiver")
    assert (await receiver.register_with(source)).status_code == 201
    mesh.transport.down.add("ods-receiver.test")
    data = os.urandom(2 * 1024 * 1024)
    await uploaded(source.admin, "broken.pkg", data)
    with source.context.files.published("broken.pkg").open("r+b") as handle:
        handle.write(b"not the uploaded bytes")
    mesh.transport.down.discard("ods-receiver.test")

    for _ in range(200):
        events = (await receiver.admin.get("/api/admin/events")).json()["items"]
        if any(e["kind"] == "package.downloading" for e in events):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(2)
    package = (await receiver.admin.get("/api/admin/packages/broken.pkg")).json()
    assert package["status"] == "Downloading"
    progress = package["progress"]
    assert progress["chunks_total"] == 2
    assert progress["chunks_done"] <= 1
    assert progress["source"] == "ods-source"
    listed = (await receiver.admin.get("/api/admin/packages?status=Downloading")).json()
    assert [p["progress"]["chunks_total"] for p in listed["items"]] == [2]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=receiver.app), base_url=receiver.url
    ) as client:
        assert (await client.get("/share/broken.pkg")).status_code == 404
    assert not receiver.context.files.published("broken.pkg").exists()
