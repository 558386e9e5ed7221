"""Deletes, replacements and conflicting uploads across an in-process mesh."""

from __future__ import annotations

import asyncio
import hashlib
import os

from ods.mesh import reconcile, tombstones
from ods.mesh.peers import links
from tests.helpers.mesh import Mesh, Node, link_all, served_sha256, wait_public
from tests.helpers.packages import uploaded


async def wait_gone(node: Node, name: str, within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while (await node.admin.get(f"/api/admin/packages/{name}")).status_code != 404:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{name} is still on {node.name}")
        await asyncio.sleep(0.05)
    assert not node.context.files.published(name).exists()


async def events(node: Node, kind: str) -> list[dict[str, object]]:
    response = await node.admin.get("/api/admin/events", params={"kind": kind})
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


async def reconcile_now(node: Node, other: Node) -> None:
    link = await links.link_by_iss(node.context, other.context.iss)
    assert link is not None
    await reconcile.reconcile_with(node.context, link)


async def test_a_delete_reaches_the_end_of_a_chain(mesh: Mesh) -> None:
    a, b, c = [await mesh.add(name) for name in ("ods-a", "ods-b", "ods-c")]
    await link_all([a, b, c])
    await uploaded(a.admin, "Old.pkg", os.urandom(2 * 1024 * 1024))
    await wait_public(c, "Old.pkg")

    assert (await a.admin.delete("/api/admin/packages/Old.pkg")).status_code == 204
    await wait_gone(b, "Old.pkg")
    await wait_gone(c, "Old.pkg")
    [deleted] = await events(c, "package.deleted")
    assert "removed here too" in str(deleted["message"])
    # The tombstone keeps reconciliation from bringing the version back.
    await reconcile_now(c, b)
    await asyncio.sleep(0.3)
    assert (await c.admin.get("/api/admin/packages/Old.pkg")).status_code == 404


async def test_a_server_down_during_a_delete_learns_of_it_when_it_reconciles(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await link_all([a, b])
    await uploaded(a.admin, "Gone.pkg", b"soon deleted")
    await wait_public(b, "Gone.pkg")
    mesh.transport.down.add("ods-b.test")
    assert (await a.admin.delete("/api/admin/packages/Gone.pkg")).status_code == 204
    await asyncio.sleep(0.3)
    assert (await b.admin.get("/api/admin/packages/Gone.pkg")).status_code == 200

    mesh.transport.down.discard("ods-b.test")
    await reconcile_now(b, a)
    await wait_gone(b, "Gone.pkg")


async def test_a_replacement_replaces_the_old_version_on_peers(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await link_all([a, b])
    first = await uploaded(a.admin, "Tool.pkg", b"version 1")
    await wait_public(b, "Tool.pkg")

    second = os.urandom(1024 * 1024 + 7)
    response = await a.admin.post(
        "/api/admin/upload",
        params={"replace": "true"},
        files={"file": ("Tool.pkg", second)},
        data={"stage": "Prod"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["replaced_uuid"] == first["uuid"]
    # The old version stays served until the new one is in: no gap on the peer.
    for _ in range(300):
        answer = await b.admin.get("/api/admin/packages/Tool.pkg")
        assert answer.status_code == 200, answer.text
        got = answer.json()
        if got["uuid"] == response.json()["uuid"] and got["status"] == "Public":
            break
        await asyncio.sleep(0.05)
    assert got["uuid"] == response.json()["uuid"]
    assert got["status"] == "Public"
    assert await served_sha256(b, "Tool.pkg") == hashlib.sha256(second).hexdigest()
    assert await events(b, "package.conflict") == []
    listed = (await b.admin.get("/api/admin/packages")).json()["items"]
    assert [p["filename"] for p in listed] == ["Tool.pkg"]


async def test_conflicting_uploads_converge_on_the_newer_one(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    on_a = await uploaded(a.admin, "Same.pkg", b"uploaded to a")
    await asyncio.sleep(1.1)  # created times have one-second resolution
    on_b = await uploaded(b.admin, "Same.pkg", b"uploaded to b, later")
    details = [(await n.admin.get("/api/admin/packages/Same.pkg")).json() for n in (a, b)]
    newer = max(details, key=lambda p: (p["created_ts"], p["uuid"]))
    assert newer["uuid"] == on_b["uuid"]
    winner_bytes = b"uploaded to b, later"

    await link_all([a, b])
    sha256 = hashlib.sha256(winner_bytes).hexdigest()
    for node in (a, b):
        for _ in range(300):
            got = (await node.admin.get("/api/admin/packages/Same.pkg")).json()
            if got["uuid"] == newer["uuid"] and got["status"] == "Public":
                break
            await asyncio.sleep(0.05)
        assert got["uuid"] == newer["uuid"], f"{node.name} kept {got['uuid']}"
        assert await served_sha256(node, "Same.pkg") == sha256
    [conflict] = await events(a, "package.conflict")
    assert conflict["package_uuid"] == on_a["uuid"]
    assert str(newer["uuid"]) in str(conflict["message"])


async def test_a_version_kept_for_its_successor_goes_when_the_successor_is_deleted(
    mesh: Mesh,
) -> None:
    """b keeps serving the replaced version while the new one comes; when the news is that
    the new one was deleted too, no successor is coming and the old version goes."""
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await link_all([a, b])
    await uploaded(a.admin, "Tool.pkg", b"version 1")
    await wait_public(b, "Tool.pkg")
    mesh.transport.down.add("ods-b.test")
    replaced = await a.admin.post(
        "/api/admin/upload",
        params={"replace": "true"},
        files={"file": ("Tool.pkg", b"version 2")},
        data={"stage": "Prod"},
    )
    assert replaced.status_code == 201, replaced.text
    [replacement] = await tombstones.propagated(a.context)  # names version 2 as successor
    assert (await a.admin.delete("/api/admin/packages/Tool.pkg")).status_code == 204
    # a cannot reach b: b hears of both in the order the test gives them.
    cards = {card.reason: card for card in await tombstones.propagated(a.context)}
    cards["replaced"] = replacement
    link = await links.link_by_iss(b.context, a.context.iss)
    assert link is not None

    # The replacement first: b keeps version 1 and asks for version 2...
    assert await tombstones.accept(b.context, link, cards["replaced"])
    assert (await b.admin.get("/api/admin/packages/Tool.pkg")).json()["status"] == "Public"
    # ...which was deleted meanwhile: nothing will take version 1's place.
    assert await tombstones.accept(b.context, link, cards["deleted"])

    await wait_gone(b, "Tool.pkg")
    mesh.transport.down.discard("ods-b.test")
    await reconcile_now(b, a)
    await asyncio.sleep(0.3)
    assert (await b.admin.get("/api/admin/packages/Tool.pkg")).status_code == 404
