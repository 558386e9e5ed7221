"""GET /api/ods/packages/{uuid}/chunks: several chunks in one signed request."""

from __future__ import annotations

import os

import pytest

from ods.mesh.inbound.chunks import runs
from ods.mesh.peers import links
from ods.mesh.protocol.client import PeerClient, PeerRefused, signed_request
from tests.helpers.mesh import Mesh, Node, link_all, wait_public
from tests.helpers.packages import MIB, stored_uuid, uploaded

pytestmark = pytest.mark.portable


def test_runs_group_consecutive_chunks_up_to_a_length() -> None:
    assert runs([], 8) == []
    assert runs([0, 1, 2, 3, 4], 2) == [(0, 2), (2, 2), (4, 1)]
    assert runs([7, 1, 2, 9, 3], 8) == [(1, 3), (7, 1), (9, 1)]


async def client_of(receiver: Node, sender: Node) -> PeerClient:
    link = await links.link_by_iss(receiver.context, sender.context.iss)
    assert link is not None
    return PeerClient(receiver.context.http, receiver.context.iss, link)


@pytest.fixture
async def pair(mesh: Mesh) -> tuple[Node, Node, bytes, str]:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await link_all([a, b])
    data = os.urandom(3 * MIB + 1000)
    uuid = stored_uuid((await uploaded(a.admin, "Runs.pkg", data))["uuid"])
    await wait_public(b, "Runs.pkg")
    return a, b, data, uuid


async def test_a_run_is_the_chunks_bytes_in_order(pair: tuple[Node, Node, bytes, str]) -> None:
    a, b, data, uuid = pair
    link = (await client_of(b, a)).link

    async def run(query: str) -> bytes:
        answer = await signed_request(
            b.context.http,
            own_iss=b.context.iss,
            receiver_iss=link.iss,
            secret=link.secret,
            base_url=link.url,
            method="GET",
            path=f"/packages/{uuid}/chunks?{query}",
            limit=64 * MIB,
        )
        assert answer.status == 200
        # Streamed bytes are checked against the signed manifest, not signed themselves.
        assert answer.signature is None
        return answer.content

    assert await run("start=1&count=2") == data[MIB : 3 * MIB]
    # A run past the end stops at the last, shorter chunk.
    assert await run("start=2&count=64") == data[2 * MIB :]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("start=4&count=1", "404"),
        ("start=-1&count=1", "422"),
        ("start=0&count=0", "422"),
        ("start=0&count=65", "422"),
        ("count=1", "422"),
    ],
)
async def test_a_run_outside_the_file_is_refused(
    pair: tuple[Node, Node, bytes, str], query: str, status: str
) -> None:
    a, b, _, uuid = pair
    client = await client_of(b, a)
    with pytest.raises(PeerRefused, match=f"HTTP {status}"):
        await client.call("GET", f"/packages/{uuid}/chunks?{query}")


async def test_a_run_of_an_unknown_package_is_404(pair: tuple[Node, Node, bytes, str]) -> None:
    a, b, _, _ = pair
    client = await client_of(b, a)
    with pytest.raises(PeerRefused, match="HTTP 404"):
        await client.call("GET", "/packages/no-such-uuid/chunks?start=0&count=1")


async def test_an_unsigned_run_request_is_refused(pair: tuple[Node, Node, bytes, str]) -> None:
    a, _, _, uuid = pair
    response = await a.admin.get(f"/api/ods/packages/{uuid}/chunks?start=0&count=1")
    assert response.status_code == 401
    assert response.json()["error"]
