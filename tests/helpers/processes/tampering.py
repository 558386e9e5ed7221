"""An attacker on the path between two servers: an HTTP proxy on loopback that reads
each exchange whole and may rewrite, replace, hold or drop the answer.

`TamperingProxy` passes requests on unchanged (it cannot sign them) and hands
each answer to a `Tamper`, which returns the answer to send, or None to drop
the connection without one. The tampers below are the attacks the end-to-end
trust tests play: rewrite manifests, inject a tombstone into inventories, flip
bytes in chunk runs, and replay an earlier answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ods.packages.digest import CHUNK_SIZE
from tests.helpers.manifests import chunk_digests
from tests.helpers.processes.serve import free_port

HEAD_END = b"\r\n\r\n"
PEER_API = "/api/ods"


@dataclass(frozen=True)
class Exchange:
    """One request as sent, and its answer as the server gave it (or a tamper rewrote it)."""

    method: str
    target: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]  # the answer's, less its framing
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)

    def is_manifest(self) -> bool:
        parts = self.path.split("/")
        return self.method == "GET" and len(parts) == 5 and parts[3] == "packages"

    def is_inventory(self) -> bool:
        return self.method == "GET" and self.path == PEER_API + "/packages"

    def is_chunk_run(self) -> bool:
        return self.method == "GET" and self.path.endswith("/chunks")

    def uuid(self) -> str:
        """The package a manifest or chunk run is of."""
        return self.path.split("/")[4]

    def encoded(self) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body or self.status not in (204, 304):
            lines.append(f"Content-Length: {len(self.body)}")
        return "\r\n".join(lines).encode("latin-1") + HEAD_END + self.body


Tamper = Callable[[Exchange], Awaitable[Exchange | None]]


async def passing(exchange: Exchange) -> Exchange | None:
    return exchange


def _fields(lines: list[str]) -> list[tuple[str, str]]:
    return [(name.strip(), value.strip()) for name, _, value in (x.partition(":") for x in lines)]


async def _body(reader: asyncio.StreamReader, fields: dict[str, str], until_close: bool) -> bytes:
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += await reader.readexactly(size + 2)
            del body[len(body) - 2 :]
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers from ODS or uvicorn
                return bytes(body)
    if "content-length" in fields:
        return await reader.readexactly(int(fields["content-length"]))
    return await reader.read() if until_close else b""


class TamperingProxy:
    """Passes each connection on to `target_port`, an exchange at a time, through `tamper`."""

    def __init__(self, target_port: int, tamper: Tamper = passing) -> None:
        self.target_port = target_port
        self.tamper = tamper
        self.port = free_port()
        self.answered: list[str] = []  # "GET /api/ods/…" for every exchange that went through
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> TamperingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._relay(reader, writer)
        except asyncio.CancelledError:
            pass  # the proxy is closing; a cancelled handler would be logged by asyncio
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        server_in, server_out = await asyncio.open_connection(
            "127.0.0.1", self.target_port, limit=2**20
        )
        try:
            with suppress(ConnectionError, asyncio.IncompleteReadError):
                while await self._one(client_in, client_out, server_in, server_out):
                    pass
        finally:
            server_out.close()

    async def _one(
        self,
        client_in: asyncio.StreamReader,
        client_out: asyncio.StreamWriter,
        server_in: asyncio.StreamReader,
        server_out: asyncio.StreamWriter,
    ) -> bool:
        """Relay one exchange; False when the connection is done."""
        try:
            head = await client_in.readuntil(HEAD_END)
        except asyncio.IncompleteReadError:
            return False
        request_line, *lines = head[: -len(HEAD_END)].decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        fields = {name.lower(): value for name, value in _fields(lines)}
        body = await _body(client_in, fields, until_close=False)
        server_out.write(head + body)
        await server_out.drain()

        head = await server_in.readuntil(HEAD_END)
        status_line, *lines = head[: -len(HEAD_END)].decode("latin-1").split("\r\n")
        _, code, reason = [*status_line.split(" ", 2), ""][:3]
        headers = _fields(lines)
        fields = {name.lower(): value for name, value in headers}
        framed = "content-length" in fields or "transfer-encoding" in fields
        status = int(code)
        answer = b"" if status in (204, 304) else await _body(server_in, fields, until_close=True)
        exchange = Exchange(
            method=method,
            target=target,
            status=status,
            reason=reason,
            headers=tuple(
                (name, value)
                for name, value in headers
                if name.lower() not in ("content-length", "transfer-encoding")
            ),
            body=answer,
        )
        sent = await self.tamper(exchange)
        if sent is None:
            return False
        self.answered.append(f"{method} {target}")
        client_out.write(sent.encoded())
        await client_out.drain()
        return framed and fields.get("connection", "").lower() != "close"


def with_body(exchange: Exchange, body: bytes) -> Exchange:
    return replace(exchange, body=body)


class RewriteManifests:
    """Describes every package as `data` in manifests, and serves `data` for chunk runs:
    sizes, SHA-256, SHA1 and chunk digests rewritten, the answer's signature left as it was."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.active = True
        self.rewritten = 0
        self.rewrote = asyncio.Event()

    async def __call__(self, exchange: Exchange) -> Exchange | None:
        if not self.active or exchange.status != 200:
            return exchange
        if exchange.is_manifest():
            manifest: dict[str, Any] = json.loads(exchange.body)
            manifest |= {
                "file_size": len(self.data),
                "sha256": hashlib.sha256(self.data).hexdigest(),
                "sha1": hashlib.sha1(self.data).hexdigest(),  # noqa: S324
                "chunks": [c.model_dump() for c in chunk_digests(self.data)],
            }
            self.rewritten += 1
            self.rewrote.set()
            return with_body(exchange, json.dumps(manifest).encode())
        if exchange.is_chunk_run():
            start = int(exchange.query["start"][0]) * CHUNK_SIZE
            end = start + int(exchange.query["count"][0]) * CHUNK_SIZE
            self.rewritten += 1
            return with_body(exchange, self.data[start:end])
        return exchange


class InjectTombstone:
    """Adds `tombstone` to every inventory: a delete of a package the receiver has."""

    def __init__(self, tombstone: dict[str, Any]) -> None:
        self.tombstone = tombstone
        self.active = True
        self.injected = 0
        self.injected_once = asyncio.Event()

    async def __call__(self, exchange: Exchange) -> Exchange | None:
        if not self.active or exchange.status != 200 or not exchange.is_inventory():
            return exchange
        inventory: dict[str, Any] = json.loads(exchange.body)
        inventory["tombstones"] = [*inventory.get("tombstones", []), self.tombstone]
        self.injected += 1
        self.injected_once.set()
        return with_body(exchange, json.dumps(inventory).encode())


class FlipChunkBytes:
    """Flips one byte in every chunk of every chunk run: each chunk fails its digests."""

    def __init__(self) -> None:
        self.flipped_runs = 0

    async def __call__(self, exchange: Exchange) -> Exchange | None:
        if exchange.status != 200 or not exchange.is_chunk_run():
            return exchange
        body = bytearray(exchange.body)
        for start in range(0, len(body), CHUNK_SIZE):
            body[min(start + 100, len(body) - 1)] ^= 0xFF
        self.flipped_runs += 1
        return with_body(exchange, bytes(body))


class ReplayManifest:
    """Records the first manifest answer and plays it back to a later request of its path.

    Until then it drops the package's chunk runs (the fetch fails and asks for the
    manifest again) and holds inventories (the receiver does not hear yet what
    changed at the source); the replay waits for `release`.
    """

    def __init__(self) -> None:
        self.recorded: Exchange | None = None
        self.dropped = asyncio.Event()
        self.release = asyncio.Event()
        self.replayed = asyncio.Event()

    async def __call__(self, exchange: Exchange) -> Exchange | None:
        if self.replayed.is_set():
            return exchange
        if exchange.is_manifest() and exchange.status == 200 and self.recorded is None:
            self.recorded = exchange
            return exchange
        recorded = self.recorded
        if recorded is None:
            return exchange
        if exchange.is_chunk_run() and exchange.uuid() == recorded.uuid():
            self.dropped.set()
            return None
        if exchange.is_inventory():
            await self.replayed.wait()
            return exchange
        if exchange.is_manifest() and exchange.path == recorded.path:
            await self.release.wait()
            self.replayed.set()
            return replace(recorded, target=exchange.target)
        return exchange
