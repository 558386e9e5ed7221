"""The data of the events replication records: which package, which peer, who won."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from tests.helpers.mesh import Mesh, Node, link_all, wait_public
from tests.helpers.packages import uploaded


async def events_of(node: Node, kind: str, count: int = 1) -> list[dict[str, Any]]:
    """The node's events of a kind, newest first, once there are `count` of them."""
    for _ in range(300):
        response = await node.admin.get("/api/admin/events", params={"kind": kind})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        if len(items) >= count:
            return items
        await asyncio.sleep(0.05)
    raise AssertionError(f"{node.name} has {len(items)} {kind} events, not {count}")


async def test_a_replicated_package_names_its_source_in_each_event(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await link_all([a, b])
    [registered] = await events_of(a, "peer.registered")
    assert registered["actor"] == "admin"
    assert registered["data"] == {
        "iss": b.context.iss,
        "name": "ods-b",
        "url": b.url,
        "by_peer": False,
        "re_registered": False,
    }
    [accepted] = await events_of(b, "peer.registered")
    assert accepted["actor"] is None
    assert (accepted["data"]["iss"], accepted["data"]["by_peer"]) == (a.context.iss, True)

    data = b"a package that travels"
    sent = await uploaded(a.admin, "Travel.pkg", data)
    await wait_public(b, "Travel.pkg")
    digests = {
        "uuid": sent["uuid"],
        "filename": "Travel.pkg",
        "stage": "Prod",
        "file_size": len(data),
        "sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    source = {"peer": "ods-a", "peer_iss": a.context.iss}
    [coming] = await events_of(b, "package.downloading")
    assert coming["data"] == digests | source | {"status": "Downloading"}
    [arrived] = await events_of(b, "package.available")
    assert arrived["data"] == digests | source | {"status": "Public"}
    assert arrived["package_uuid"] == sent["uuid"]

    moved = await a.admin.patch("/api/admin/packages/Travel.pkg", json={"stage": "Test"})
    assert moved.status_code == 200, moved.text
    [followed] = await events_of(b, "package.stage_changed")
    assert followed["message"] == "Travel.pkg moved from Prod to Test (from ods-a)"
    assert followed["data"]["previous_stage"] == "Prod"
    assert followed["data"]["stage"] == "Test"
    assert (followed["data"]["peer"], followed["data"]["peer_iss"]) == ("ods-a", a.context.iss)

    assert (await a.admin.delete("/api/admin/packages/Travel.pkg")).status_code == 204
    [removed] = await events_of(b, "package.deleted")
    assert removed["message"] == "Travel.pkg deleted on ods-a: removed here too"
    assert removed["data"]["uuid"] == sent["uuid"]
    assert removed["data"]["reason"] == "deleted"
    assert removed["data"]["peer_iss"] == a.context.iss


async def test_a_conflict_keeps_both_versions_digests(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    on_a = await uploaded(a.admin, "Same.pkg", b"uploaded to a")
    await asyncio.sleep(1.1)  # created times have one-second resolution
    on_b = await uploaded(b.admin, "Same.pkg", b"uploaded to b, later")
    await link_all([a, b])

    [conflict] = await events_of(a, "package.conflict")
    assert conflict["package_uuid"] == on_a["uuid"]
    found = conflict["data"]
    assert (found["uuid"], found["sha256"]) == (
        on_a["uuid"],
        hashlib.sha256(b"uploaded to a").hexdigest(),
    )
    assert (found["incoming_uuid"], found["incoming_sha256"]) == (
        on_b["uuid"],
        hashlib.sha256(b"uploaded to b, later").hexdigest(),
    )
    assert found["incoming_file_size"] == len(b"uploaded to b, later")
    assert (found["winner_uuid"], found["loser_uuid"]) == (on_b["uuid"], on_a["uuid"])
    assert (found["peer"], found["peer_iss"]) == ("ods-b", b.context.iss)


async def test_an_unreachable_peer_is_named_with_the_error(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await link_all([a, b])
    mesh.transport.down.add("ods-b.test")
    await uploaded(a.admin, "x.pkg", b"payload")
    [down] = await events_of(a, "peer.unreachable")
    assert down["data"]["iss"] == b.context.iss
    assert down["data"]["url"] == b.url
    assert "ods-b.test" in down["data"]["error"]
    assert down["message"] == f"ods-b: {down['data']['error']}"
