"""Downloads from `ods serve` alone sent by the kernel (sendfile), on a real server.

The bytes must be the file's whatever the client does: whole files, ranges,
several downloads on one keep-alive connection, pipelined requests, a client
that reads slowly, one that resets the connection halfway. With
ODS_PORTABLE_IO the same downloads stream through Python instead.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers.packages import MIB, content_of
from tests.helpers.processes.serve import OdsServer, serving

pytestmark = pytest.mark.e2e

PASSWORD = "a zero-copy passphrase"
SIZE = 5 * MIB + 12_345
NAME = "Sent-By-Kernel.pkg"


@dataclass
class Served:
    server: OdsServer
    admin: httpx.AsyncClient
    content: bytes
    native: bool  # the platform's calls in use (else ODS_PORTABLE_IO=1)


@pytest.fixture(params=[True, False], ids=["native", "portable"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[OdsServer, bool]]:
    portable = "0" if request.param else "1"
    with serving(tmp_path / "data", admin_password=PASSWORD, ODS_PORTABLE_IO=portable) as server:
        yield server, request.param


@pytest.fixture
async def served(server: tuple[OdsServer, bool]) -> AsyncIterator[Served]:
    ods, native = server
    content = content_of(SIZE, seed=7)
    async with httpx.AsyncClient(base_url=ods.url, timeout=60) as admin:
        login = await admin.post(
            "/api/auth/login", json={"username": "admin", "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        admin.headers["Authorization"] = f"Bearer {login.json()['token']}"
        upload = await admin.post("/api/admin/upload", files={"file": (NAME, content)})
        assert upload.status_code in (200, 201), upload.text
        yield Served(ods, admin, content, native)


async def kernel_bytes(admin: httpx.AsyncClient) -> int:
    text = (await admin.get("/metrics")).text
    found = re.search(r'^ods_bytes_sent_by_kernel_total\{to="clients"\} (\S+)$', text, re.M)
    return int(float(found.group(1))) if found else 0


async def test_whole_files_ranges_and_keep_alive_get_the_files_bytes(served: Served) -> None:
    before = await kernel_bytes(served.admin)
    async with httpx.AsyncClient(base_url=served.server.url, timeout=60) as client:
        whole = await client.get(f"/share/{NAME}")
        assert whole.status_code == 200
        assert whole.headers["content-length"] == str(SIZE)
        assert whole.content == served.content
        # The same connection again, then a range from an odd offset to near the end.
        ranged = await client.get(f"/share/{NAME}", headers={"Range": "bytes=1001-5000000"})
        assert ranged.status_code == 206
        assert ranged.headers["content-range"] == f"bytes 1001-5000000/{SIZE}"
        assert ranged.content == served.content[1001:5000001]
        head = await client.head(f"/share/{NAME}")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(SIZE)
        assert head.content == b""
        again = await client.get(f"/share/{NAME}")
        assert again.content == served.content
    sent = await kernel_bytes(served.admin) - before
    assert sent == (2 * SIZE + 5_000_000 - 1000 if served.native else 0)


def request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: ods\r\n\r\n".encode()


def read_response(sock: socket.socket, pending: bytearray) -> tuple[bytes, bytes]:
    """The head and body of the next response on `sock`; what follows stays in `pending`."""
    while b"\r\n\r\n" not in pending:
        pending += sock.recv(65536) or b""
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
    body = bytearray(rest)
    while len(body) < length:
        data = sock.recv(min(1 << 20, length - len(body)))
        assert data, "the server closed the connection mid-body"
        body += data
    pending[:] = body[length:]
    return head, bytes(body[:length])


def pipelined(server: OdsServer) -> list[tuple[bytes, bytes]]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        # Three requests in one write: each answer must wait for the one before it.
        sock.sendall(request(f"/share/{NAME}") + request("/healthz") + request(f"/share/{NAME}"))
        pending = bytearray()
        return [read_response(sock, pending) for _ in range(3)]


async def test_pipelined_requests_are_answered_in_order(served: Served) -> None:
    answers = await asyncio.to_thread(pipelined, served.server)
    assert [head.split(b" ")[1] for head, _ in answers] == [b"200", b"200", b"200"]
    assert answers[0][1] == served.content
    assert answers[2][1] == served.content
    assert json.loads(answers[1][1]) == {"status": "ok"}


def read_slowly(server: OdsServer) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.sendall(request(f"/share/{NAME}"))
        pending = bytearray()
        while b"\r\n\r\n" not in pending:
            pending += sock.recv(4096)
        body = bytearray(pending.partition(b"\r\n\r\n")[2])
        while len(body) < SIZE:
            data = sock.recv(256 * 1024)
            assert data, "the server closed the connection mid-body"
            body += data
            if len(body) < MIB:
                time.sleep(0.02)  # long enough for the server's socket buffer to fill
        return bytes(body)


async def test_a_slow_reader_gets_every_byte(served: Served) -> None:
    assert await asyncio.to_thread(read_slowly, served.server) == served.content


def reset_halfway(server: OdsServer) -> int:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.sendall(request(f"/share/{NAME}"))
    received = 0
    while received < MIB:
        received += len(sock.recv(65536))
    # Close with a reset (linger 0) while the server still has megabytes to send.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    return received


async def test_a_client_that_resets_halfway_leaves_the_server_serving(served: Served) -> None:
    for _ in range(3):
        assert await asyncio.to_thread(reset_halfway, served.server) >= MIB
    async with httpx.AsyncClient(base_url=served.server.url, timeout=60) as client:
        assert (await client.get(f"/share/{NAME}")).content == served.content
    await asyncio.sleep(0.5)
    output = served.server.output()
    assert "Traceback" not in output
    assert "without completing response" not in output


async def test_downloads_that_need_a_login_are_sent_by_the_kernel_too(tmp_path: Path) -> None:
    content = content_of(SIZE, seed=8)
    settings = {"ODS_SHARE_REQUIRES_LOGIN": "true", "ODS_PORTABLE_IO": "0"}
    with serving(tmp_path / "data", admin_password=PASSWORD, **settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as admin:
            login = await admin.post(
                "/api/auth/login", json={"username": "admin", "password": PASSWORD}
            )
            admin.headers["Authorization"] = f"Bearer {login.json()['token']}"
            upload = await admin.post("/api/admin/upload", files={"file": (NAME, content)})
            assert upload.status_code in (200, 201), upload.text
            before = await kernel_bytes(admin)
            refused = await admin.get(f"/share/{NAME}", headers={"Authorization": ""})
            assert refused.status_code == 401
            whole = await admin.get(f"/share/{NAME}")
            assert whole.status_code == 200
            assert whole.content == content
            # Ranges stream through Python here (Starlette sends only whole files by path).
            ranged = await admin.get(f"/share/{NAME}", headers={"Range": "bytes=7-1048582"})
            assert ranged.status_code == 206
            assert ranged.content == content[7:1048583]
            assert await kernel_bytes(admin) - before == SIZE
        assert "Traceback" not in server.output()
