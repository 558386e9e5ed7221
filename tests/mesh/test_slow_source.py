"""A source that drips its chunks below ODS_FETCH_MIN_RATE is dropped, and the same
fetch takes the package from another peer that has it.

The slow source's chunk runs come from a real socket that drips them, read by
a real PeerConnection; everything else runs in process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from ods.core.models import Job
from ods.mesh.protocol.client import PeerLink
from ods.mesh.protocol.connection import PeerConnection, RunConnection
from ods.mesh.state import mesh_state
from ods.packages.digest import CHUNK_SIZE
from tests.helpers.mesh import Mesh, Node, served_sha256, wait_public
from tests.helpers.packages import MIB, stored_uuid, uploaded

pytestmark = pytest.mark.portable

DRIP_EVERY = 0.1  # seconds between the slow source's bytes


class DrippingSource:
    """Answers chunk-run requests for `data` with the right head, then a byte every DRIP_EVERY."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.asked = threading.Event()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.05)
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            head = b""
            while b"\r\n\r\n" not in head:
                part = conn.recv(65536)
                if not part:
                    return
                head += part
            target = head.split(b" ")[1].decode()
            query = parse_qs(urlsplit(target).query)
            first, count = int(query["start"][0]), int(query["count"][0])
            body = self.data[first * CHUNK_SIZE : (first + count) * CHUNK_SIZE]
            self.asked.set()
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            for index in range(len(body)):
                if self.stopping.wait(DRIP_EVERY):
                    return
                conn.sendall(body[index : index + 1])

    def stop(self) -> None:
        self.stopping.set()
        self.acceptor.join()
        self.listener.close()
        for thread in self.threads:
            thread.join()


class Redirected:
    """A PeerConnection to the dripping source, for runs signed for the slow node's URL."""

    def __init__(self, link: PeerLink, source: DrippingSource, stall_seconds: float) -> None:
        self.link = link
        self.source = source
        self.connection = PeerConnection(
            source.url,
            name=link.name or link.url,
            ssl_context=ssl.create_default_context(),
            stall_seconds=stall_seconds,
            min_rate=64 * 1024,
        )

    def request(self, url: str, headers: Mapping[str, str], length: int) -> None:
        self.connection.request(url.replace(self.link.url, self.source.url, 1), headers, length)

    def read_into(self, view: memoryview) -> int:
        return self.connection.read_into(view)

    def abort(self) -> None:
        self.connection.abort()

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def data() -> bytes:
    return os.urandom(MIB + 4321)


@pytest.fixture
def dripping(data: bytes) -> Iterator[DrippingSource]:
    source = DrippingSource(data)
    yield source
    source.stop()


async def peer_error(node: Node, name: str) -> str:
    response = await node.admin.get("/api/admin/registered_ods")
    assert response.status_code == 200, response.text
    (peer,) = [item for item in response.json()["items"] if item["name"] == name]
    return str(peer["last_error"])


async def test_a_source_below_the_floor_is_dropped_and_another_source_used(
    mesh: Mesh, data: bytes, dripping: DrippingSource
) -> None:
    stall = 3  # the floor's window: time enough for the good peer to get the package
    slow = await mesh.add("ods-slow")
    good = await mesh.add("ods-good")
    receiver = await mesh.add("ods-receiver", fetch_stall_seconds=stall)
    loop_connection = mesh_state(receiver.context).connect
    assert loop_connection is not None

    def connect(link: PeerLink) -> RunConnection:
        if link.iss == slow.context.iss:
            return Redirected(link, dripping, stall)
        return loop_connection(link)

    mesh_state(receiver.context).connect = connect
    for peer in (slow, good):
        assert (await receiver.register_with(peer)).status_code == 201

    # Only the slow source has it, and tells the receiver, which starts there.
    sent = await uploaded(slow.admin, "Slow.pkg", data)
    for _ in range(500):
        if dripping.asked.is_set():
            break
        await asyncio.sleep(0.02)
    assert dripping.asked.is_set(), "the receiver never asked the slow source"
    # While the slow source drips, the good peer gets the package.
    assert (await good.register_with(slow)).status_code == 201
    await wait_public(good, "Slow.pkg")

    got = await wait_public(receiver, "Slow.pkg", within=30)

    assert got["uuid"] == sent["uuid"]
    assert await served_sha256(receiver, "Slow.pkg") == hashlib.sha256(data).hexdigest()
    assert "below the minimum of 64.0 KB/s" in await peer_error(receiver, "ods-slow")
    async with receiver.context.db.session() as session:
        fetch = (
            await session.execute(
                select(Job).where(Job.key == f"fetch:{stored_uuid(sent['uuid'])}")
            )
        ).scalar_one()
    # Dropped and taken from the good peer in one attempt, not after a retry.
    assert fetch.attempts == 1
