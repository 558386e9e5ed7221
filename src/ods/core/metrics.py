"""Prometheus metrics (served at `GET /metrics`): requests, bytes served, jobs, queue depth.

Each app has its own registry, so several apps in one process (tests) do not
collide. `ods.web.metrics` counts requests and bytes as they are sent.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


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
        self.bytes_sent_by_kernel = Counter(
            "ods_bytes_sent_by_kernel",
            "Of ods_bytes_served, those the kernel copied from the file to the socket "
            "(sendfile) without passing through ODS; 0 over TLS and with ODS_PORTABLE_IO.",
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

    def watch_queue(self, queue: object) -> None:
        """Report the depth of a queue that counts its jobs (the in-process one does)."""
        depth = getattr(queue, "depth", None)
        if depth is not None:
            self.queue_depth.set_function(lambda: float(getattr(queue, "depth", 0)))

    def render(self) -> bytes:
        return generate_latest(self.registry)
