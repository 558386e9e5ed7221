"""Withdrawal by stage: a package set back below a server's stage stops being served there
and comes back when promoted again; a stage change a server missed is repaired."""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import pytest
from sqlalchemy import update

from ods.core.models import Package
from ods.mesh.peers import links
from ods.mesh.reconcile import reconcile_all, reconcile_with
from tests.helpers.mesh import (
    Mesh,
    Node,
    events_of,
    link_all,
    served_sha256,
    share_get,
    wait_public,
)
from tests.helpers.packages import uploaded

pytestmark = pytest.mark.portable


async def state_on(node: Node, name: str) -> tuple[str, str]:
    body = (await node.admin.get(f"/api/admin/packages/{name}")).json()
    return body["stage"], body["status"]


async def until(node: Node, name: str, wanted: tuple[str, str], within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while await state_on(node, name) != wanted:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{node.name}: {await state_on(node, name)}, not {wanted}")
        await asyncio.sleep(0.05)


async def share_status(node: Node, name: str) -> int:
    return (await share_get(node, name)).status_code


async def test_a_demotion_withdraws_the_package_on_servers_that_do_not_take_it(
    mesh: Mesh,
) -> None:
    nodes = [await mesh.add(f"ods-{i}", stage="Prod") for i in range(3)]
    origin, first, last = nodes
    await link_all(nodes)  # a chain: last hears everything through first
    data = os.urandom(300000)
    await uploaded(origin.admin, "Tool.pkg", data, stage="Prod")
    for node in (first, last):
        await wait_public(node, "Tool.pkg")

    demoted = await origin.admin.patch("/api/admin/packages/Tool.pkg", json={"stage": "Test"})
    assert demoted.status_code == 200, demoted.text
    # The origin serves its own upload whatever its stage.
    assert await state_on(origin, "Tool.pkg") == ("Test", "Public")
    for node in (first, last):
        await until(node, "Tool.pkg", ("Test", "Withdrawn"))
        assert await share_status(node, "Tool.pkg") == 404
        [withdrawn] = await events_of(node, "package.withdrawn")
        assert withdrawn["data"]["server_stage"] == "Prod"
        assert withdrawn["message"] == (
            "Tool.pkg is withdrawn here: it is at Test now, "
            "and this server takes Prod and later stages"
        )
        body = (await node.admin.get("/api/admin/packages/Tool.pkg")).json()
        assert body["status_reason"] == (
            "Withdrawn: it is at Test, and this server (Prod) takes Prod and later stages."
        )

    promoted = await origin.admin.patch("/api/admin/packages/Tool.pkg", json={"stage": "Prod"})
    assert promoted.status_code == 200, promoted.text
    for node in (first, last):
        await until(node, "Tool.pkg", ("Prod", "Public"))
        assert await served_sha256(node, "Tool.pkg") == hashlib.sha256(data).hexdigest()
        assert len(await events_of(node, "package.restored")) == 1


async def test_a_missed_demotion_is_repaired_by_reconciliation(mesh: Mesh) -> None:
    origin = await mesh.add("ods-origin", stage="Prod")
    late = await mesh.add("ods-late", stage="Prod")
    await link_all([origin, late])
    await uploaded(origin.admin, "Tool.pkg", os.urandom(2000), stage="Prod")
    await wait_public(late, "Tool.pkg")
    demoted = await origin.admin.patch("/api/admin/packages/Tool.pkg", json={"stage": "Test"})
    assert demoted.status_code == 200, demoted.text
    await until(late, "Tool.pkg", ("Test", "Withdrawn"))
    # As if the notification had never reached it.
    async with late.context.db.transaction() as session:
        await session.execute(
            update(Package).values(
                stage="Prod", status="Public", status_reason=None, stage_statement=None
            )
        )
    assert await share_status(late, "Tool.pkg") == 200
    link = await links.link_by_iss(late.context, origin.context.iss)
    assert link is not None
    await reconcile_with(late.context, link)
    assert await state_on(late, "Tool.pkg") == ("Test", "Withdrawn")
    assert await share_status(late, "Tool.pkg") == 404


async def test_a_server_whose_stage_changes_restores_what_it_now_takes(mesh: Mesh) -> None:
    origin = await mesh.add("ods-origin", stage="Prod")
    site = await mesh.add("ods-site", stage="Prod")
    await link_all([origin, site])
    await uploaded(origin.admin, "Tool.pkg", os.urandom(2000), stage="Prod")
    await wait_public(site, "Tool.pkg")
    await origin.admin.patch("/api/admin/packages/Tool.pkg", json={"stage": "Test"})
    await until(site, "Tool.pkg", ("Test", "Withdrawn"))
    changed: Any = await site.admin.post("/api/admin/about/update", json={"stage": "Test"})
    assert changed.status_code == 201, changed.text
    await reconcile_all(site.context)
    assert await state_on(site, "Tool.pkg") == ("Test", "Public")
    assert await share_status(site, "Tool.pkg") == 200


async def test_servers_of_three_stages_each_follow_their_own_rule(mesh: Mesh) -> None:
    """Dev, Test and Prod servers in a chain; a Prod package set back to Dev and promoted
    step by step: each server serves it exactly while its stage takes it, and the Dev
    server it was uploaded to serves it throughout."""
    dev = await mesh.add("ods-dev", stage="Dev")
    test = await mesh.add("ods-test", stage="Test")
    prod = await mesh.add("ods-prod", stage="Prod")
    await link_all([dev, test, prod])
    await uploaded(dev.admin, "App.pkg", os.urandom(5000), stage="Prod")
    for node in (test, prod):
        await wait_public(node, "App.pkg")

    steps = [
        ("Dev", ["Public", "Withdrawn", "Withdrawn"]),
        ("Test", ["Public", "Public", "Withdrawn"]),
        ("Prod", ["Public", "Public", "Public"]),
    ]
    for stage, wanted in steps:
        moved = await dev.admin.patch("/api/admin/packages/App.pkg", json={"stage": stage})
        assert moved.status_code == 200, moved.text
        for node, status in zip((dev, test, prod), wanted, strict=True):
            await until(node, "App.pkg", (stage, status))
            assert await share_status(node, "App.pkg") == (200 if status == "Public" else 404)
