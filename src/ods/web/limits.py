"""Limits on request bodies, applied before any of a body is read.

Every request body is capped by what its route needs: a few KiB to log in,
what the peer protocol needs for peer calls, the upload limit for uploads,
1 MiB for any other admin call. A body that says it is larger is refused at
once (413); one that grows larger while it streams is cut off there. A body
must also keep coming: one that stalls, or trickles below a minimum rate
over a window, is cut off (408), so a slow client cannot hold a connection
and a worker forever. The app sees a cut-off body as a client that went
away; this middleware answers for it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

AUTH_BODY = 16 * 1024
PEER_BODY = 64 * 1024
ADMIN_BODY = 1024 * 1024
UPLOAD_PATHS = ("/api/admin/upload", "/api/admin/packages")
UPLOAD_OVERHEAD = 1024 * 1024  # multipart boundaries and form fields around the file
RATE_WINDOW_SECONDS = 10.0


@dataclass(frozen=True)
class BodyRules:
    max_upload: int
    min_rate: int  # bytes per second, measured over `window`; 0 turns the floor off
    window: float  # seconds
    stall: float  # seconds without a byte

    def is_upload(self, method: str, path: str) -> bool:
        return method == "POST" and path in UPLOAD_PATHS

    def limit(self, method: str, path: str) -> int:
        if self.is_upload(method, path):
            return self.max_upload + UPLOAD_OVERHEAD
        if path.startswith("/api/auth/"):
            return AUTH_BODY
        if path.startswith("/api/ods/"):
            return PEER_BODY
        return ADMIN_BODY


class BodyCut(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def too_large(limit: int, rules: BodyRules | None = None) -> BodyCut:
    if rules is not None:
        # An upload: say the limit the admin set, as the upload's own check does.
        return BodyCut(
            413,
            "payload_too_large",
            f"The upload is larger than this server accepts: {rules.max_upload} bytes "
            "(ODS_MAX_UPLOAD_SIZE).",
        )
    return BodyCut(413, "payload_too_large", f"The request body is over {limit} bytes.")


class RequestLimits:
    """The ASGI middleware that applies BodyRules to every HTTP request."""

    def __init__(
        self, app: ASGIApp, rules: BodyRules, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.app = app
        self.rules = rules
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.rules.limit(scope["method"], scope["path"])
        upload = self.rules if self.rules.is_upload(scope["method"], scope["path"]) else None
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(send, too_large(limit, upload))
            return
        body = _Body(receive, limit, self.rules, self.clock, upload)
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if body.cut is not None and not started:
                return  # the app's answer to a body it never got whole; ours goes out below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, body.receive, tracked_send)
        except Exception:
            # The app failed on a body it was cut off from: that is ours to answer.
            if body.cut is None or started:
                raise
        if body.cut is not None and not started:
            await self._refuse(send, body.cut)

    async def _refuse(self, send: Send, cut: BodyCut) -> None:
        payload = json.dumps({"error": cut.code, "message": cut.message, "details": None})
        await send(
            {
                "type": "http.response.start",
                "status": cut.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    # The rest of the body is not read: the connection cannot be reused.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload.encode()})


class _Body:
    """The request's receive channel, counting and timing the body as it arrives."""

    def __init__(
        self,
        receive: Receive,
        limit: int,
        rules: BodyRules,
        clock: Callable[[], float],
        upload: BodyRules | None,
    ) -> None:
        self._receive = receive
        self.upload = upload
        self.limit = limit
        self.rules = rules
        self.clock = clock
        self.received = 0
        self.complete = False
        self.cut: BodyCut | None = None
        self.window_start = clock()
        self.window_bytes = 0

    async def receive(self) -> Message:
        if self.cut is not None:
            return {"type": "http.disconnect"}
        if self.complete:
            return await self._receive()
        try:
            message = await asyncio.wait_for(self._receive(), self.rules.stall)
        except TimeoutError:
            return self._cut(
                BodyCut(
                    408,
                    "request_timeout",
                    f"The request body stalled for {self.rules.stall:g} s.",
                )
            )
        if message["type"] != "http.request":
            return message
        size = len(message.get("body", b""))
        self.received += size
        if self.received > self.limit:
            return self._cut(too_large(self.limit, self.upload))
        if not message.get("more_body", False):
            self.complete = True
            return message
        return self._check_rate(size) or message

    def _check_rate(self, size: int) -> Message | None:
        if self.rules.min_rate <= 0:
            return None
        self.window_bytes += size
        elapsed = self.clock() - self.window_start
        if elapsed < self.rules.window:
            return None
        rate = self.window_bytes / elapsed
        if rate < self.rules.min_rate:
            return self._cut(
                BodyCut(
                    408,
                    "request_timeout",
                    f"The request body came at {rate:.0f} bytes/s, below the minimum of "
                    f"{self.rules.min_rate} bytes/s.",
                )
            )
        self.window_start, self.window_bytes = self.clock(), 0
        return None

    def _cut(self, cut: BodyCut) -> Message:
        self.cut = cut
        return {"type": "http.disconnect"}
