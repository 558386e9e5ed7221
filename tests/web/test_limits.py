"""Request bodies: capped by route before they are read, cut off when they stall or trickle."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from starlette.types import Message, Receive, Scope, Send

from ods.web.limits import ADMIN_BODY, AUTH_BODY, PEER_BODY, BodyRules, RequestLimits
from tests.helpers.api import NEW_PASSWORD
from tests.helpers.processes.serve import OdsServer, serving

RULES = BodyRules(max_upload=10 * 1024 * 1024, min_rate=1000, window=0.3, stall=0.5)


async def counting_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body, then answers how many bytes it got."""
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("the client went away")
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = json.dumps({"received": received}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def scope_for(path: str, length: int | None = None, method: str = "POST") -> Scope:
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    return {"type": "http", "method": method, "path": path, "headers": headers}


async def run(
    scope: Scope, parts: list[tuple[bytes, float]]
) -> tuple[int, dict[str, object], list[Message]]:
    """The middleware over `counting_app`, fed `parts` (bytes, seconds to wait before them)."""
    sent: list[Message] = []
    queue = list(parts)

    async def receive() -> Message:
        if not queue:
            await asyncio.sleep(3600)
        data, wait = queue.pop(0)
        await asyncio.sleep(wait)
        return {"type": "http.request", "body": data, "more_body": bool(queue)}

    async def send(message: Message) -> None:
        sent.append(message)

    await RequestLimits(counting_app, RULES)(scope, receive, send)
    status = sent[0]["status"]
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    return status, body, sent


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/api/auth/login", AUTH_BODY),
        ("/api/ods/notify", PEER_BODY),
        ("/api/admin/users", ADMIN_BODY),
        ("/api/admin/upload", RULES.max_upload + 1024 * 1024),
    ],
)
async def test_a_body_declared_over_its_routes_cap_is_refused_unread(path: str, limit: int) -> None:
    status, body, sent = await run(scope_for(path, limit + 1), [(b"x", 3600)])
    assert status == 413
    assert body["error"] == "payload_too_large"
    assert str(limit if "upload" not in path else RULES.max_upload) in str(body["message"])
    assert (b"connection", b"close") in sent[0]["headers"]


async def test_a_body_within_its_cap_is_read_whole() -> None:
    status, body, _ = await run(scope_for("/api/auth/login", 10), [(b"x" * 10, 0)])
    assert (status, body) == (200, {"received": 10})


async def test_an_undeclared_body_is_cut_off_where_it_passes_the_cap() -> None:
    parts = [(b"x" * 4096, 0.0)] * 10
    status, body, _ = await run(scope_for("/api/auth/login"), parts)
    assert status == 413
    assert body["error"] == "payload_too_large"


async def test_a_stalled_body_is_cut_off() -> None:
    started = time.monotonic()
    status, body, _ = await run(scope_for("/api/admin/upload"), [(b"x" * 100, 0), (b"x", 5)])
    assert status == 408
    assert "stalled" in str(body["message"])
    assert time.monotonic() - started < 2


async def test_a_trickling_body_is_cut_off_below_the_minimum_rate() -> None:
    drip = [(b"x", 0.1)] * 50
    started = time.monotonic()
    status, body, _ = await run(scope_for("/api/admin/upload"), drip)
    assert status == 408
    assert "below the minimum" in str(body["message"])
    assert time.monotonic() - started < 2


async def test_a_steady_body_above_the_rate_is_read_whole() -> None:
    steady = [(b"x" * 2000, 0.05)] * 20  # 40 KB/s for a second: several windows
    status, body, _ = await run(scope_for("/api/admin/upload"), steady)
    assert (status, body) == (200, {"received": 40000})


# Through a real server: memory stays flat while a huge body is refused.


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OdsServer]:
    with serving(tmp_path / "data", admin_password=NEW_PASSWORD) as process:
        yield process


def stream_body(port: int, path: str, total: int, chunked: bool) -> bytes:
    """Send a POST of `total` bytes as fast as the server takes them; its answer's head."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: ods\r\nContent-Type: application/json\r\n"
        head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {total}\r\n"
        sock.sendall((head + "\r\n").encode())
        block = b"x" * (1024 * 1024)
        try:
            for _ in range(total // len(block)):
                frame = b"%x\r\n%s\r\n" % (len(block), block) if chunked else block
                sock.sendall(frame)
        except OSError:
            pass  # the server answered and closed: what the test wants
        return sock.recv(4096)


@pytest.mark.e2e
@pytest.mark.parametrize("path", ["/api/auth/login", "/api/ods/notify"])
@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
async def test_a_huge_unauthenticated_body_leaves_memory_flat(
    server: OdsServer, path: str, chunked: bool
) -> None:
    process = psutil.Process(server.process.pid)
    before = process.memory_info().rss
    answer = await asyncio.to_thread(stream_body, server.port, path, 200 * 1024 * 1024, chunked)
    assert answer.startswith(b"HTTP/1.1 413")
    grown = process.memory_info().rss - before
    assert grown < 20 * 1024 * 1024, f"RSS grew by {grown} bytes"


def drip(port: int, path: str, every: float, count: int) -> tuple[bytes, float]:
    """A POST whose body comes one byte per `every` seconds; its answer and when it came."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: ods\r\nContent-Type: application/json\r\n"
        sock.sendall((head + f"Content-Length: {count}\r\n\r\n").encode())
        sock.setblocking(False)
        for _ in range(count):
            try:
                answer = sock.recv(4096)
            except BlockingIOError:
                answer = b""
            if answer:
                return answer, time.monotonic() - started
            try:
                sock.send(b" ")
            except OSError:
                break
            time.sleep(every)
        sock.setblocking(True)
        return sock.recv(4096), time.monotonic() - started


@pytest.mark.e2e
async def test_a_dripped_body_is_cut_off_by_a_real_server(server: OdsServer) -> None:
    answer, after = await asyncio.to_thread(drip, server.port, "/api/auth/login", 1.0, 60)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"below the minimum" in answer
    assert after < 20
