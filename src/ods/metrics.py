"""Prometheus metrics at `GET /metrics`: requests, bytes served, jobs, queue depth, failures.

Each app has its own registry, so several apps in one process (tests) do not
collide. The middleware counts bytes as they are sent, whatever sends them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from ods.sync.queue import JobQueue


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ods_http_requests",
            "HTTP requests answered, by method and status.",
            ["method", "status"],
            registry=self.registry,
        )
        self.bytes_served = Counter(
            "ods_bytes_served",
            "Package bytes sent: to clients from /share, to peers as chunks.",
            ["to"],
            registry=self.registry,
        )
        self.jobs = Counter(
            "ods_jobs",
            "Background jobs finished, by kind and outcome (done, retry, failed).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "ods_queue_depth",
            "Jobs waiting or running in this process's in-process queue.",
            registry=self.registry,
        )

    def watch_queue(self, queue: JobQueue) -> None:
        depth = getattr(queue, "depth", None)
        if depth is not None:
            self.queue_depth.set_function(lambda: float(getattr(queue, "depth", 0)))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def served_to(path: str) -> str | None:
    if path.startswith("/share/"):
        return "clients"
    if path.startswith("/api/ods/packages/") and ("/chunks/" in path or path.endswith("/chunks")):
        return "peers"
    return None


class MetricsMiddleware:
    """Counts every HTTP response and the package bytes in it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        to = served_to(scope["path"])
        method = scope["method"]

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.requests.labels(method, str(message["status"])).inc()
            elif to is not None and message["type"] == "http.response.body":
                self.metrics.bytes_served.labels(to).inc(len(message.get("body", b"")))
            await send(message)

        await self.app(scope, receive, counting_send)
