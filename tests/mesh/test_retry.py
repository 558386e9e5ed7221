"""Failed is not for ever: an admin retries a Failed package, and reconciliation does too.

A fetch is made to fail for real: its chunk runs cannot get through, and then
its only source is unregistered, so it gives up (Failed, staging file removed).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Mapping
from typing import Any

from ods.mesh.protocol.client import PeerUnreachable
from ods.mesh.state import mesh_state
from ods.packages.retry import MAX_RETRY_DELAY, retry_delay
from tests.helpers.api import assert_error
from tests.helpers.mesh import Mesh, Node, events_of, served_sha256, wait_public
from tests.helpers.packages import MIB, uploaded


class CutLink:
    """A chunk-run connection whose peer cannot be reached."""

    def request(self, url: str, headers: Mapping[str, str], length: int) -> None:
        raise PeerUnreachable("the test cut the link")

    def read_into(self, view: memoryview) -> int:
        raise PeerUnreachable("the test cut the link")

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


async def wait_status(node: Node, name: str, status: str, within: float = 20.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await node.admin.get(f"/api/admin/packages/{name}")
        if response.status_code == 200 and response.json()["status"] == status:
            body: dict[str, Any] = response.json()
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{name} not {status} on {node.name}: {response.text[:300]}")
        await asyncio.sleep(0.05)


async def unregister(node: Node, other: Node) -> None:
    peers = (await node.admin.get("/api/admin/registered_ods")).json()["items"]
    (peer_id,) = [peer["id"] for peer in peers if peer["name"] == other.name]
    response = await node.admin.delete(f"/api/admin/registered_ods/{peer_id}")
    assert response.status_code == 204, response.text


async def failed_on(receiver: Node, source: Node, name: str) -> dict[str, Any]:
    """Let `receiver` fail to fetch `name` from `source`; then link them again."""
    state = mesh_state(receiver.context)
    connect = state.connect
    state.connect = lambda link: CutLink()
    try:
        assert (await receiver.register_with(source)).status_code == 201
        await wait_status(receiver, name, "Downloading")
        await unregister(receiver, source)
        failed = await wait_status(receiver, name, "Failed")
    finally:
        state.connect = connect
    assert failed["status_reason"] == "no registered peer is left to fetch it from"
    # A Failed fetch leaves no staging file behind.
    assert not receiver.context.files.download(failed["uuid"]).exists()
    assert (await receiver.register_with(source)).status_code == 201
    return failed


async def test_an_admin_retries_a_failed_package_at_once(mesh: Mesh) -> None:
    source = await mesh.add("ods-source")
    receiver = await mesh.add("ods-receiver")
    data = os.urandom(3 * MIB + 5)
    await uploaded(source.admin, "Retried.pkg", data)
    failed = await failed_on(receiver, source, "Retried.pkg")

    # Nothing brings it back by itself before its back-off (one reconciliation interval).
    await asyncio.sleep(1.0)
    still = (await receiver.admin.get("/api/admin/packages/Retried.pkg")).json()
    assert still["status"] == "Failed"

    answer = await receiver.admin.post("/api/admin/packages/Retried.pkg/retry")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "Downloading"
    assert answer.json()["status_reason"] is None
    assert answer.json()["uuid"] == failed["uuid"]
    await wait_public(receiver, "Retried.pkg")
    assert await served_sha256(receiver, "Retried.pkg") == await served_sha256(
        source, "Retried.pkg"
    )
    assert not receiver.context.files.download(failed["uuid"]).exists()


async def test_retrying_what_is_not_failed_is_409_and_an_unknown_package_404(mesh: Mesh) -> None:
    node = await mesh.add("ods-one")
    await uploaded(node.admin, "Public.pkg", b"served here")
    answer = await node.admin.post("/api/admin/packages/Public.pkg/retry")
    assert_error(answer, 409, "conflict")
    assert "only a Failed package can be retried" in answer.json()["message"]
    assert_error(await node.admin.post("/api/admin/packages/Nothing.pkg/retry"), 404, "not_found")


async def test_reconciliation_retries_a_failed_package_after_its_back_off(mesh: Mesh) -> None:
    source = await mesh.add("ods-source")
    receiver = await mesh.add("ods-receiver", reconcile_interval=10)
    data = os.urandom(2 * MIB + 17)
    await uploaded(source.admin, "Again.pkg", data)
    await failed_on(receiver, source, "Again.pkg")
    # The reconciliation right after registering is inside the back-off: still Failed.
    await asyncio.sleep(2.0)
    assert (await receiver.admin.get("/api/admin/packages/Again.pkg")).json()["status"] == "Failed"

    await wait_public(receiver, "Again.pkg", within=40.0)
    assert await served_sha256(receiver, "Again.pkg") == await served_sha256(source, "Again.pkg")
    assert len(await events_of(receiver, "package.failed")) == 1


def test_the_back_off_doubles_from_one_interval_up_to_a_day() -> None:
    interval = dt.timedelta(minutes=5)
    assert retry_delay(1, interval) == interval
    assert retry_delay(2, interval) == 2 * interval
    assert retry_delay(4, interval) == 8 * interval
    assert retry_delay(40, interval) == MAX_RETRY_DELAY
