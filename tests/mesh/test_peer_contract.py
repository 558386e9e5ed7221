"""Peer answers as the schema declares them."""

from __future__ import annotations

import os

from tests.helpers.mesh import Mesh, link_all, peer_call, wait_public
from tests.helpers.packages import uploaded


async def test_notify_answers_202_with_no_body(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await link_all([a, b])
    package = await uploaded(a.admin, "Known.pkg", os.urandom(3000))
    await wait_public(b, "Known.pkg")
    answer = await peer_call(
        mesh, a, b, "POST", "/notify", {"uuid": package["uuid"], "stage": "Prod"}
    )
    assert answer.status_code == 202
    assert answer.content == b""
    assert "content-type" not in answer.headers
