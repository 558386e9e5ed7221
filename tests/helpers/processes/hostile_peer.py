"""A hostile peer: a small HTTP server in a process of its own that registers with a
real `ods serve` the way a peer does, and then lies to it.

It signs what a real peer signs (its registration, its requests, its answers)
with ODS's own protocol code, so the victim takes it for a registered server.
What it answers is set by the test, path by path: a signed body of the test's
choosing (a forged statement, an oversize manifest, garbage), an endless body,
a gzip bomb, or the bytes of a chunk run, at full speed or a byte a second.
The test drives it over a small control API under /control/ on the same port,
and reads back what the victim asked it (`HostilePeer`, the test's side).

Run as `python -m tests.helpers.processes.hostile_peer PORT NAME SEED_HEX` from
the repository root.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import secrets
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ods.core.crypto import iss_for_key
from ods.core.stages import Stage
from ods.mesh.protocol import signing
from ods.mesh.protocol.answers import ANSWER_SIGNATURE, answer_is_genuine, answer_signature
from ods.mesh.protocol.sealing import seal
from ods.mesh.protocol.wire import PeerRegistration
from ods.packages.digest import CHUNK_SIZE
from ods.trust.statements import public_bytes, public_text
from tests.helpers.processes.serve import free_port

ROOT = Path(__file__).resolve().parents[3]
HEAD_LIMIT = 64 * 1024
ENDLESS_PIECE = b'{"index":0,"sha1":"' + b"0" * 40 + b'","sha256":"' + b"0" * 64 + b'"},'


def identity(seed: bytes) -> tuple[Ed25519PrivateKey, str]:
    """The hostile peer's signing key and the iss made from it, as a new server has."""
    key = Ed25519PrivateKey.from_private_bytes(seed)
    return key, iss_for_key(public_bytes(public_text(key)))


@functools.cache
def gzip_bomb(inflated: int) -> bytes:
    """A gzip body of `inflated` zero bytes: about a thousandth of that on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(CHUNK_SIZE)
    parts = [packer.compress(block) for _ in range(inflated // CHUNK_SIZE)]
    parts.append(packer.flush())
    return b"".join(parts)


# The server: runs in its own process.


@dataclass
class Answer:
    """How to answer one path: `signed` (a body, signed for the request it answers),
    `endless` (JSON that never ends) or `gzip` (a signed gzip bomb of `inflated` bytes)."""

    kind: str
    body: bytes = b""
    status: int = 200
    inflated: int = 0


@dataclass
class Run:
    """The bytes served for a package's chunk runs; `drip`: one byte a second."""

    data: bytes
    drip: bool = False


@dataclass
class Hostile:
    port: int
    name: str
    key: Ed25519PrivateKey
    iss: str
    links: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # iss: (url, secret)
    answers: dict[str, Answer] = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)  # path: body bytes sent

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self) -> None:
        server = await asyncio.start_server(self.connection, "127.0.0.1", self.port)
        async with server:
            await server.serve_forever()

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if len(head) > HEAD_LIMIT:
                    break
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if not await self.answer(method, target, headers, body, writer):
                    break
        writer.close()

    async def answer(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request; False when the connection is to be closed."""
        path = urlsplit(target).path
        if path.startswith("/control/"):
            result = await self.control(path, json.loads(body or b"{}"))
            await self.send(writer, 200, json.dumps(result).encode())
            return True
        self.seen.append(f"{method} {target}")
        nonce = headers.get(signing.NONCE.lower(), "")
        link = self.links.get(headers.get(signing.SENDER.lower(), ""))
        secret = link[1] if link is not None else b""
        answer = self.answers.get(path)
        if answer is not None:
            return await self.send_answer(writer, path, answer, secret, nonce)
        parts = path.split("/")
        if path.endswith("/chunks") and len(parts) == 6 and parts[4] in self.runs:
            query = parse_qs(urlsplit(target).query)
            start, count = int(query["start"][0]), int(query["count"][0])
            await self.send_run(writer, path, self.runs[parts[4]], start, count)
            return True
        refusal = json.dumps({"error": "not_found", "message": "Nothing here.", "details": None})
        await self.send(writer, 404, refusal.encode())
        return True

    async def send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        extra: dict[str, str] | None = None,
    ) -> None:
        fields = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        fields |= extra or {}
        head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
        writer.write(head.encode("latin-1") + b"\r\n" + body)
        await writer.drain()

    async def send_answer(
        self, writer: asyncio.StreamWriter, path: str, answer: Answer, secret: bytes, nonce: str
    ) -> bool:
        if answer.kind == "signed":
            signature = answer_signature(secret, nonce, answer.status, answer.body)
            await self.send(writer, answer.status, answer.body, {ANSWER_SIGNATURE: signature})
            self.sent[path] = self.sent.get(path, 0) + len(answer.body)
            return True
        if answer.kind == "gzip":
            bomb = gzip_bomb(answer.inflated)
            signature = answer_signature(secret, nonce, 200, bomb)
            extra = {"Content-Encoding": "gzip", ANSWER_SIGNATURE: signature}
            await self.send(writer, 200, bomb, extra)
            self.sent[path] = self.sent.get(path, 0) + len(bomb)
            return True
        # Endless: a manifest whose chunk list never ends, chunked, as fast as it is read.
        writer.write(
            b"HTTP/1.1 200 X\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        piece = b'{"uuid":"x","chunks":[' + ENDLESS_PIECE * 400
        while True:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            self.sent[path] = self.sent.get(path, 0) + len(piece)
            piece = ENDLESS_PIECE * 400

    async def send_run(
        self, writer: asyncio.StreamWriter, path: str, run: Run, start: int, count: int
    ) -> None:
        piece = run.data[start * CHUNK_SIZE : (start + count) * CHUNK_SIZE]
        head = (
            "HTTP/1.1 200 X\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(piece)}\r\n\r\n"
        )
        writer.write(head.encode("latin-1"))
        if not run.drip:
            writer.write(piece)
            await writer.drain()
            self.sent[path] = self.sent.get(path, 0) + len(piece)
            return
        await writer.drain()
        for offset in range(len(piece)):
            writer.write(piece[offset : offset + 1])
            await writer.drain()
            self.sent[path] = self.sent.get(path, 0) + 1
            await asyncio.sleep(1.0)

    async def control(self, path: str, request: dict[str, Any]) -> dict[str, Any]:
        if path == "/control/register":
            return await self.register(request["url"], request["iss"], request["key"])
        if path == "/control/notify":
            note = {"uuid": request["uuid"], "stage": request["stage"]}
            return await self.call(request["iss"], "POST", "/notify", note)
        if path == "/control/get":
            return await self.call(request["iss"], "GET", request["path"], None)
        if path == "/control/answer":
            body = base64.b64decode(request.get("body", ""))
            kind, inflated = request["kind"], request.get("inflated", 0)
            if kind == "gzip":
                gzip_bomb(inflated)  # made now, not while the victim waits for it
            self.answers[request["path"]] = Answer(kind, body, request.get("status", 200), inflated)
            return {}
        if path == "/control/run":
            data = base64.b64decode(request["data"])
            self.runs[request["uuid"]] = Run(data, request.get("drip", False))
            return {}
        if path == "/control/seen":
            return {"requests": self.seen, "sent": self.sent}
        return {"error": f"no control {path}"}

    async def register(self, url: str, iss: str, key: str) -> dict[str, Any]:
        """Register with the server at `url` as a new peer, as `register` does."""
        secret = secrets.token_bytes(32)
        registration = PeerRegistration(
            iss=self.iss,
            name=self.name,
            url=self.url,
            stage=Stage.DEV,
            firewalled_mode=False,
            public_key=public_text(self.key),
            sealed_secret=seal(secret, key, sender=self.iss, receiver=iss),
        )
        content = registration.model_dump_json().encode()
        headers = signing.sign(
            secret,
            method="POST",
            target="/api/ods/register",
            body=content,
            sender=self.iss,
            receiver=iss,
        )
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                f"{url}/api/ods/register",
                content=content,
                headers=headers | {"Content-Type": "application/json"},
            )
        genuine = answer_is_genuine(
            secret,
            headers[signing.NONCE],
            response.status_code,
            response.content,
            response.headers.get(ANSWER_SIGNATURE),
        )
        if response.status_code == 201 and genuine:
            self.links[iss] = (url, secret)
        return {"status": response.status_code, "body": response.text, "genuine": genuine}

    async def call(self, iss: str, method: str, path: str, body: Any) -> dict[str, Any]:
        """A signed request to a server this one registered with; its status and body."""
        url, secret = self.links[iss]
        content = b"" if body is None else json.dumps(body).encode()
        headers = signing.sign(
            secret,
            method=method,
            target="/api/ods" + path,
            body=content,
            sender=self.iss,
            receiver=iss,
        )
        if body is not None:
            headers["Content-Type"] = "application/json"
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.request(
                method, f"{url}/api/ods{path}", content=content, headers=headers
            )
        return {"status": response.status_code, "body": response.text}


def main() -> None:
    port, name, seed = int(sys.argv[1]), sys.argv[2], bytes.fromhex(sys.argv[3])
    key, iss = identity(seed)
    asyncio.run(Hostile(port, name, key, iss).serve())


# The test's side.


class HostilePeer:
    """The hostile peer's process, driven from the test; `key` signs its statements."""

    def __init__(self, log_dir: Path, name: str = "hostile") -> None:
        self.name = name
        self.seed = os.urandom(32)
        self.key, self.iss = identity(self.seed)
        self.port = free_port()
        self.log = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(self.port), self.name, self.seed.hex()],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(f"{self.url}/control/seen", timeout=2)
                return
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the hostile peer did not start:\n{self.log.read_text()}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    async def control(self, what: str, **request: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=60) as http:
            response = await http.post(f"{self.url}/control/{what}", json=request)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def register_with(self, url: str, iss: str, key: str) -> None:
        result = await self.control("register", url=url, iss=iss, key=key)
        assert result["status"] == 201, result
        assert result["genuine"], result

    async def notify(self, iss: str, uuid: str, stage: str = "Prod") -> None:
        result = await self.control("notify", iss=iss, uuid=uuid, stage=stage)
        assert result["status"] == 202, result

    async def get(self, iss: str, path: str) -> str:
        """The body of a signed GET to a server it registered with (under /api/ods)."""
        result = await self.control("get", iss=iss, path=path)
        assert result["status"] == 200, result
        body: str = result["body"]
        return body

    async def answer(self, path: str, kind: str, body: bytes = b"", **extra: Any) -> None:
        encoded = base64.b64encode(body).decode("ascii")
        await self.control("answer", path=path, kind=kind, body=encoded, **extra)

    async def serve_run(self, uuid: str, data: bytes, *, drip: bool = False) -> None:
        await self.control("run", uuid=uuid, data=base64.b64encode(data).decode(), drip=drip)

    async def seen(self) -> tuple[list[str], dict[str, int]]:
        """The victim's requests so far, and the body bytes sent per path."""
        result = await self.control("seen")
        return result["requests"], result["sent"]


@contextmanager
def hostile_peer(log_dir: Path) -> Iterator[HostilePeer]:
    peer = HostilePeer(log_dir)
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


if __name__ == "__main__":
    main()
