"""A fetch that does not fit on the disk waits before it starts, and goes on once space is freed.

The receiver's data dir is a small tmpfs, filled before the fetch starts.
"""

from __future__ import annotations

import asyncio
import os

from tests.helpers.disk import fill, small_disk
from tests.helpers.mesh import Mesh, Node, events_of, served_sha256, wait_public
from tests.helpers.packages import MIB, uploaded


async def reason_of(node: Node, name: str) -> str | None:
    response = await node.admin.get(f"/api/admin/packages/{name}")
    if response.status_code != 200:
        return None
    reason: str | None = response.json()["status_reason"]
    return reason


async def test_a_fetch_that_does_not_fit_waits_visibly_and_goes_on_when_space_is_freed(
    mesh: Mesh,
) -> None:
    source = await mesh.add("ods-source")
    with small_disk(mesh.root / "ods-receiver", 32) as disk:
        receiver = await mesh.add("ods-receiver", min_free_space="4M")
        data = os.urandom(6 * MIB + 1)
        await uploaded(source.admin, "Wait.pkg", data)
        filler = fill(disk, leave=8 * MIB)  # the file fits, but not beside the reserve
        assert (await receiver.register_with(source)).status_code == 201

        deadline = asyncio.get_running_loop().time() + 20
        while not (await reason_of(receiver, "Wait.pkg") or "").startswith(
            "waiting for disk space"
        ):
            assert asyncio.get_running_loop().time() < deadline, "the fetch never waited"
            await asyncio.sleep(0.05)
        package = (await receiver.admin.get("/api/admin/packages/Wait.pkg")).json()
        assert package["status"] == "Downloading"
        assert "ODS_MIN_FREE_SPACE" in package["status_reason"]
        (event,) = await events_of(receiver, "package.waiting_for_space")
        assert event["data"]["needed_bytes"] == len(data)
        assert event["data"]["reserve_bytes"] == 4 * MIB
        assert (await receiver.admin.get("/readyz")).status_code == 200  # 8 MiB > the reserve

        filler.unlink()
        got = await wait_public(receiver, "Wait.pkg", within=20)
        assert got["status_reason"] is None
        assert await served_sha256(receiver, "Wait.pkg") == await served_sha256(source, "Wait.pkg")
