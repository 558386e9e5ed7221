"""A real HTTP receiver for webhooks on loopback: records every request, checks signatures.

It runs in a thread of its own (a `ThreadingHTTPServer`), so the server under
test, in-process or a real `ods serve`, posts to it over TCP. Each request's
`X-ODS-Signature-256` is checked against the raw body with the secret, when it
has one; `bad_signatures` counts those that did not match. What it answers is
set by `answers` (one per request, then `then`): a status, or "hang" (sleep
past any timeout), "stream" (a 200 body that never ends) or "redirect:<url>".
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = int | str


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None  # None: no secret to check with

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    secret: str | None = None
    answers: list[Answer] = field(default_factory=list)
    then: Answer = 200
    received: list[Received] = field(default_factory=list)
    streamed_bytes: int = 0
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_answer(self) -> Answer:
        with self._lock:
            return self.answers.pop(0) if self.answers else self.then

    def record(self, item: Received) -> None:
        with self._lock:
            self.received.append(item)

    @property
    def bad_signatures(self) -> int:
        return sum(1 for item in self.received if item.signature_ok is False)

    def events(self) -> list[str]:
        return [item.headers.get("x-ods-event", "") for item in self.received]

    def bodies(self) -> list[Any]:
        return [item.json for item in self.received]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.received) >= count:
                return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.received)} request(s) received, wanted {count}")


async def arrived(receiver: Receiver, count: int, seconds: float = 30.0) -> list[Received]:
    """`wait_for` for tests whose server runs in their own event loop."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if len(receiver.received) >= count:
            return list(receiver.received)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(receiver.received)} request(s) received, wanted {count}")


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            ok: bool | None = None
            if receiver.secret is not None and "x-ods-signature-256" in headers:
                mac = hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest("sha256=" + mac, headers["x-ods-signature-256"])
            elif receiver.secret is not None:
                ok = False
            receiver.record(Received(self.path, headers, body, ok))
            self._answer(receiver.next_answer())

        def _answer(self, answer: Answer) -> None:
            if answer == "hang":
                time.sleep(60)
                return
            if answer == "stream":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                chunk = b"x" * 65536
                try:
                    for _ in range(100_000):  # 6.5 GB: far more than anyone should read
                        self.wfile.write(chunk)
                        receiver.streamed_bytes += len(chunk)
                except OSError:
                    pass
                self.close_connection = True
                return
            if isinstance(answer, str) and answer.startswith("redirect:"):
                self.send_response(302)
                self.send_header("Location", answer.removeprefix("redirect:"))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = int(answer)
            text = b"ok" if status < 300 else b"no"
            self.send_response(status)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

    return Handler


@contextmanager
def receiving(secret: str | None = None, host: str = "127.0.0.1") -> Iterator[Receiver]:
    """A receiver listening on a free port of `host` until the block ends."""
    receiver = Receiver(secret=secret)
    server = ThreadingHTTPServer((host, 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://{host}:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, name="webhook receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
