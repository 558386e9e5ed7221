"""What a server reads back from a peer: bounded, never decompressed, in time, and signed.

A scripted HTTP server on loopback plays the peer; `PeerClient.call` is the
caller every JSON exchange goes through.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from ods.core.stages import Stage
from ods.mesh.protocol.answers import ANSWER_SIGNATURE, answer_signature
from ods.mesh.protocol.client import (
    AnswerRejected,
    PeerClient,
    PeerLacks,
    PeerLink,
    PeerRefused,
    PeerUnreachable,
)
from ods.mesh.protocol.signing import NONCE

SECRET = b"s" * 32
Answer = Callable[[dict[str, str], asyncio.StreamWriter], Awaitable[None]]


async def read_head(reader: asyncio.StreamReader) -> dict[str, str]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)
    }


@pytest.fixture
async def peer() -> AsyncIterator[Callable[[Answer], Awaitable[PeerClient]]]:
    servers: list[asyncio.Server] = []
    clients: list[httpx.AsyncClient] = []

    async def start(answer: Answer) -> PeerClient:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                headers = await read_head(reader)
                length = int(headers.get("content-length", "0"))
                if length:
                    await reader.readexactly(length)
                await answer(headers, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        link = PeerLink(
            id=1,
            iss="b" * 32,
            name="peer-b",
            url=f"http://127.0.0.1:{port}",
            stage=Stage.PROD,
            firewalled_mode=False,
            secret=SECRET,
        )
        http = httpx.AsyncClient()
        clients.append(http)
        return PeerClient(http, "a" * 32, link)

    yield start
    for http in clients:
        await http.aclose()
    for server in servers:
        server.close()
        await server.wait_closed()


def response(status: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def signed(status: int, body: bytes, request: dict[str, str]) -> dict[str, str]:
    return {ANSWER_SIGNATURE: answer_signature(SECRET, request[NONCE.lower()], status, body)}


async def test_a_signed_answer_is_taken(peer: Callable[[Answer], Awaitable[PeerClient]]) -> None:
    body = json.dumps({"ok": True}).encode()

    async def answer(request: dict[str, str], writer: asyncio.StreamWriter) -> None:
        assert request["accept-encoding"] == "identity"
        writer.write(response("200 OK", body, signed(200, body, request)))

    client = await peer(answer)
    assert (await client.call("GET", "/packages")).content == body


@pytest.mark.parametrize("how", ["unsigned", "other secret", "other nonce", "altered body"])
async def test_an_answer_not_signed_for_this_request_is_refused(
    peer: Callable[[Answer], Awaitable[PeerClient]], how: str
) -> None:
    body = json.dumps({"packages": []}).encode()

    async def answer(request: dict[str, str], writer: asyncio.StreamWriter) -> None:
        nonce = request[NONCE.lower()]
        signature = {
            "unsigned": None,
            "other secret": answer_signature(b"x" * 32, nonce, 200, body),
            "other nonce": answer_signature(SECRET, "0" * 32, 200, body),
            "altered body": answer_signature(SECRET, nonce, 200, b'{"packages": [1]}'),
        }[how]
        writer.write(response("200 OK", body, {ANSWER_SIGNATURE: signature} if signature else {}))

    client = await peer(answer)
    with pytest.raises(AnswerRejected, match="not signed by peer-b for this request"):
        await client.call("GET", "/packages")


async def test_an_endless_answer_is_cut_off_at_the_cap(
    peer: Callable[[Answer], Awaitable[PeerClient]],
) -> None:
    sent = 0

    async def answer(request: dict[str, str], writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        block = b"x" * 65536
        while sent < 64 * 1024 * 1024:
            writer.write(b"%x\r\n%s\r\n" % (len(block), block))
            await writer.drain()
            sent += len(block)

    client = await peer(answer)
    with pytest.raises(AnswerRejected, match="over 1048576 bytes"):
        await client.call("GET", "/packages")
    assert sent < 16 * 1024 * 1024


async def test_a_declared_oversize_answer_is_refused_before_it_is_read(
    peer: Callable[[Answer], Awaitable[PeerClient]],
) -> None:
    async def answer(request: dict[str, str], writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    client = await peer(answer)
    started = time.monotonic()
    with pytest.raises(AnswerRejected, match="announced an answer over"):
        await client.call("GET", "/packages")
    assert time.monotonic() - started < 2


async def test_a_compressed_answer_is_never_inflated(
    peer: Callable[[Answer], Awaitable[PeerClient]],
) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))

    async def answer(request: dict[str, str], writer: asyncio.StreamWriter) -> None:
        writer.write(response("200 OK", bomb, {"Content-Encoding": "gzip"}))

    client = await peer(answer)
    with pytest.raises(AnswerRejected, match="'gzip' content encoding"):
        await client.call("GET", "/packages")


async def test_a_dripped_answer_ends_at_the_deadline(
    peer: Callable[[Answer], Awaitable[PeerClient]],
) -> None:
    async def answer(request: dict[str, str], writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.1)

    client = await peer(answer)
    started = time.monotonic()
    with pytest.raises(PeerUnreachable, match="did not answer within 1 s"):
        await client.call("GET", "/packages", deadline=1.0)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            "409 Conflict",
            json.dumps({"error": "conflict", "message": "registered\x07 already"}).encode(),
            "HTTP 409: registered  already",
        ),
        ("502 Bad Gateway", b"<html>internal admin page</html>", "HTTP 502 (not an ODS"),
        ("500 Oops", json.dumps({"message": "no error field"}).encode(), "HTTP 500 (not an ODS"),
    ],
)
async def test_a_refusal_repeats_only_a_well_formed_ods_error(
    peer: Callable[[Answer], Awaitable[PeerClient]], status: str, body: bytes, expected: str
) -> None:
    async def answer(request: dict[str, str], writer: asyncio.StreamWriter) -> None:
        writer.write(response(status, body))

    client = await peer(answer)
    with pytest.raises(PeerRefused) as refused:
        await client.call("GET", "/packages")
    assert expected in refused.value.message
    assert "internal admin page" not in refused.value.message


async def test_a_404_says_the_peer_lacks_it(
    peer: Callable[[Answer], Awaitable[PeerClient]],
) -> None:
    body = json.dumps({"error": "not_found", "message": "No published package."}).encode()

    async def answer(request: dict[str, str], writer: asyncio.StreamWriter) -> None:
        writer.write(response("404 Not Found", body))

    client = await peer(answer)
    with pytest.raises(PeerLacks):
        await client.call("GET", "/packages/x")
