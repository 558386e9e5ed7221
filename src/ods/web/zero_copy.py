"""Zero-copy file bodies: the ASGI `http.response.zerocopysend` extension over uvicorn.

uvicorn does not offer the extension, so every byte of a download would pass
through Python: read into a buffer, handed to the transport, copied into the
socket. `ZeroCopySend` wraps the app `ods serve` runs and offers it where the
kernel can copy a file to a socket itself (`platform.send_file_part`, that is
`sendfile`): a plain TCP connection of uvicorn's. Over TLS, under another
server, or with `ODS_PORTABLE_IO`, the extension is not in the scope and the
downloads stream as before.

It offers `http.response.pathsend` too (a whole file by path, which Starlette's
FileResponse sends: the downloads that need a login or a Jamf Pro token). An
app sends `{"type": "http.response.zerocopysend", "file": f, "offset": o,
"count": n}` after `http.response.start` with a Content-Length; `f` is a binary
file object (its position is not used). The response is complete when that
message returns, unless it says `"more_body": True`. A layer between may add
`SENT`, a callable given the byte count of each kernel send as it happens (the
metrics count bytes with it).

The bytes go to a duplicate of the connection's socket descriptor, so that
waiting until the socket takes more never touches the descriptor the event loop
watches for the transport (neither asyncio's loop nor uvloop allows that); the
transport writes nothing meanwhile, and its buffer is empty before the first
byte goes.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ods.core import platform
from ods.core.errors import NotFound

log = logging.getLogger(__name__)

EXTENSION = "http.response.zerocopysend"
# Its sibling for a whole file named by path; Starlette's FileResponse sends it.
PATHSEND = "http.response.pathsend"
SENT = "ods.sent"

# What ZeroCopySend reads and sets of uvicorn's response cycle (the object whose
# bound `send` the server passes to the app); a uvicorn without them is not used.
CYCLE_ATTRIBUTES = (
    "transport",
    "disconnected",
    "response_started",
    "response_complete",
    "chunked_encoding",
    "expected_content_length",
)

# How often to look whether the transport has sent what it holds (the headers,
# usually gone at once) before the file's bytes may follow.
DRAIN_POLL_SECONDS = 0.002

# FileRangeResponse without the extension: bytes per read, and per write of them.
READ_BYTES = 1024 * 1024
WRITE_BYTES = 256 * 1024


def offered(scope: Scope) -> bool:
    """Whether the server takes `http.response.zerocopysend` messages for this request."""
    return EXTENSION in scope.get("extensions", {})


async def send_open_file(send: Send, fd: int, offset: int, count: int) -> None:
    """Ask the server to send `count` bytes of the open file `fd` from `offset`, where
    `offered`; the descriptor stays open."""
    with io.FileIO(fd, closefd=False) as file:
        await send({"type": EXTENSION, "file": file, "offset": offset, "count": count})


class ZeroCopySend:
    """The outermost layer of the app under `ods serve`: offers the extension to the
    requests whose connection can take it, and sends their files with sendfile."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cycle = usable_cycle(scope, send)
        if cycle is None:
            await self.app(scope, receive, send)
            return
        scope["extensions"] = {**scope.get("extensions", {}), EXTENSION: {}, PATHSEND: {}}

        async def send_or_send_file(message: Message) -> None:
            if message["type"] == EXTENSION:
                sent = await send_file(cycle, message)
            elif message["type"] == PATHSEND:
                sent = await send_path(cycle, message)
            else:
                await send(message)
                return
            if sent:
                more: Message = {"type": "http.response.body", "body": b""}
                more["more_body"] = bool(message.get("more_body", False))
                await send(more)

        await self.app(scope, receive, send_or_send_file)


def usable_cycle(scope: Scope, send: Send) -> Any | None:
    """uvicorn's response cycle behind `send`, when its connection can take sendfile."""
    if scope["type"] != "http" or not platform.IN_USE.send_file:
        return None
    cycle = getattr(send, "__self__", None)
    if cycle is None or not all(hasattr(cycle, name) for name in CYCLE_ATTRIBUTES):
        return None
    transport = cycle.transport
    if transport.get_extra_info("sslcontext") is not None:
        return None  # TLS: every byte is encrypted in this process anyway
    sock = transport.get_extra_info("socket")
    if sock is None or not hasattr(sock, "fileno"):
        return None
    return cycle


async def send_file(cycle: Any, message: Message) -> bool:
    """Send the message's file range on the cycle's connection; False when the client
    went (the connection is closed and the cycle knows it)."""
    start, count = int(message.get("offset", 0)), int(message["count"])
    if cycle.disconnected:
        return False
    if not cycle.response_started or cycle.response_complete or cycle.chunked_encoding:
        raise RuntimeError(f"{EXTENSION} needs a started response with a Content-Length")
    if count > cycle.expected_content_length:
        raise RuntimeError("Response content longer than Content-Length")
    transport = cycle.transport
    # A transport tells when its buffer drops below a mark, not when it is empty.
    while transport.get_write_buffer_size() and not transport.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(DRAIN_POLL_SECONDS)
    if transport.is_closing():
        cycle.disconnected = True
        return False
    socket_fd = os.dup(transport.get_extra_info("socket").fileno())
    try:
        file_fd = message["file"].fileno()
        sent = await send_range(socket_fd, file_fd, start, count, cycle, message.get(SENT))
    except OSError as error:  # the client reset or closed the connection
        log.debug("download ended by the client: %s", error)
        sent = None
    finally:
        os.close(socket_fd)
    if sent is None or cycle.disconnected:
        transport.close()
        cycle.disconnected = True
        return False
    cycle.expected_content_length -= sent
    return True


async def send_path(cycle: Any, message: Message) -> bool:
    """`http.response.pathsend`: the whole file, as long as the Content-Length said."""
    try:
        fd = await asyncio.to_thread(platform.open_file, Path(message["path"]), os.O_RDONLY)
    except OSError as error:
        raise RuntimeError(f"cannot send {message['path']}: {error}") from error
    try:
        with io.FileIO(fd, closefd=False) as file:
            whole: Message = {"file": file, "offset": 0, "count": cycle.expected_content_length}
            whole[SENT] = message.get(SENT)
            return await send_file(cycle, whole)
    finally:
        os.close(fd)


async def send_range(
    socket_fd: int,
    file_fd: int,
    start: int,
    count: int,
    cycle: Any,
    on_sent: Callable[[int], None] | None = None,
) -> int:
    """Bytes sent of `count` from `start` (fewer only if the file is shorter), waiting
    whenever the socket is full, and letting the other tasks run after each call."""
    loop = asyncio.get_running_loop()
    offset, end = start, start + count
    while offset < end and not cycle.disconnected:
        try:
            sent = platform.send_file_part(socket_fd, file_fd, offset, end - offset)
        except BlockingIOError:
            await writable(loop, socket_fd)
            continue
        if sent == 0:
            break  # the file ended early: the response is short, and uvicorn says so
        offset += sent
        if on_sent is not None:
            on_sent(sent)
        await asyncio.sleep(0)
    return offset - start


async def writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Until the socket takes more bytes (or has failed, for the next call to say)."""
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)


class FileRangeResponse(Response):
    """`length` bytes of the file at `path` from `offset`, as an octet stream: sent by
    the kernel where the server offers it, else read in pieces off the event loop.
    A file shorter than the range ends the response short (the server then closes
    the connection, so the client sees a truncated body, never other bytes)."""

    def __init__(self, path: Path, offset: int, length: int, status_code: int = 200) -> None:
        super().__init__(
            status_code=status_code,
            headers={"Content-Length": str(length)},
            media_type="application/octet-stream",
        )
        self.path, self.offset, self.length = path, offset, length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            fd = await asyncio.to_thread(platform.open_file, self.path, os.O_RDONLY)
        except FileNotFoundError:
            raise NotFound(f"{self.path.name} is no longer here.") from None
        try:
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b""})
            elif offered(scope):
                await send_open_file(send, fd, self.offset, self.length)
            else:
                await self._stream(fd, send)
        finally:
            os.close(fd)

    async def _stream(self, fd: int, send: Send) -> None:
        # Few thread hops (a read per MiB), and less in flight when a client dies
        # (a write per quarter of it), each a view of the read, not a copy.
        offset, end = self.offset, self.offset + self.length
        while offset < end:
            size = min(READ_BYTES, end - offset)
            data = await asyncio.to_thread(platform.read_at, fd, size, offset)
            if not data:
                return
            offset += len(data)
            view = memoryview(data)
            for start in range(0, len(data), WRITE_BYTES):
                piece = view[start : start + WRITE_BYTES]
                more = offset < end or start + WRITE_BYTES < len(data)
                await send({"type": "http.response.body", "body": piece, "more_body": more})
