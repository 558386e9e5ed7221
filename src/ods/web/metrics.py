"""Counts every HTTP response, and the package bytes in it, into `Metrics`.

The middleware counts bytes as they are sent, whatever sends them, and those the
kernel sends from a file (`ods.web.zero_copy`) apart as well.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ods.core.metrics import Metrics
from ods.web import zero_copy


def served_to(path: str, downloads: tuple[str, ...] = ("/share/",)) -> str | None:
    """Who a response to `path` serves package bytes to: clients (the download paths,
    /share/ and Jamf Pro's /<share name>/Packages/), peers, or nobody."""
    if path.startswith(downloads):
        return "clients"
    if path.startswith("/api/ods/packages/") and ("/chunks/" in path or path.endswith("/chunks")):
        return "peers"
    return None


class MetricsMiddleware:
    """Counts every HTTP response and the package bytes in it."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, downloads: tuple[str, ...] = ("/share/",)
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.downloads = downloads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        to = served_to(scope["path"], self.downloads)
        method = scope["method"]

        def counter(to: str) -> Callable[[int], None]:
            served = self.metrics.bytes_served.labels(to)
            by_kernel = self.metrics.bytes_sent_by_kernel.labels(to)

            def sent(count: int) -> None:
                served.inc(count)
                by_kernel.inc(count)

            return sent

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.requests.labels(method, str(message["status"])).inc()
            elif to is not None and message["type"] == "http.response.body":
                self.metrics.bytes_served.labels(to).inc(len(message.get("body", b"")))
            elif to is not None and message["type"] in (zero_copy.EXTENSION, zero_copy.PATHSEND):
                message = {**message, zero_copy.SENT: counter(to)}
            await send(message)

        await self.app(scope, receive, counting_send)
