"""Latency of `GET /api/admin/packages` with many packages, on a real `ods serve`.

Starts a server on a fresh DATA_DIR (SQLite), inserts N package rows straight
into its database with SQLAlchemy and the `ods.core.models` tables (one bulk insert:
the API would need N real uploads), then times the full listing over HTTP.

    python bench/list_packages.py --count 10000 [--requests 50]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from common import (
    MIB,
    OdsServer,
    logged_in_client,
    machine_summary,
    markdown_table,
    process_cpu_seconds,
    process_rss_probe,
    progress,
    running_server,
)
from sqlalchemy import create_engine, insert

from ods.core.models import Package, utcnow
from ods.core.stages import Stage
from ods.core.statuses import Status

TARGET_MEDIAN_MS = 100.0
CLIENT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
STAGES = [stage.value for stage in Stage]


def package_row(number: int) -> dict[str, Any]:
    seed = str(number).encode()
    now = utcnow()
    return {
        "uuid": str(uuid.uuid4()),
        "filename": f"bench-package-{number:06d}.pkg",
        "file_size": 1_000_000 + number * 4096,
        "sha1": hashlib.sha1(seed, usedforsecurity=False).hexdigest(),
        "sha256": hashlib.sha256(seed).hexdigest(),
        "stage": STAGES[number % len(STAGES)],
        "status": Status.PUBLIC.value,
        "status_reason": None,
        "created": now,
        "updated": now,
    }


def insert_packages(database: Path, count: int) -> None:
    """Bulk-insert count Public packages into the server's SQLite database."""
    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 30})
    try:
        with engine.begin() as connection:
            connection.execute(insert(Package), [package_row(n) for n in range(count)])
    finally:
        engine.dispose()


def timed_listing(client: httpx.Client) -> tuple[float, int, int]:
    """Seconds for one full listing, the body's size in bytes, and its `total`."""
    started = time.perf_counter()
    response = client.get("/api/admin/packages")
    seconds = time.perf_counter() - started
    response.raise_for_status()
    return seconds, len(response.content), int(response.json()["total"])


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = min(max(1, math.ceil(fraction * len(ordered))), len(ordered))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Listing:
    count: int
    first: float
    times: list[float]
    response_bytes: int
    server_cpu_seconds: float
    server_rss: int


def measure(server: OdsServer, client: httpx.Client, count: int, requests: int) -> Listing:
    # The first listing after the start builds every item; later ones reuse those unchanged.
    first, size, total = timed_listing(client)
    if total != count:
        raise RuntimeError(f"the server lists {total} packages, expected {count}")
    cpu_before = process_cpu_seconds(server.pid)
    times = [timed_listing(client)[0] for _ in range(requests)]
    cpu_seconds = process_cpu_seconds(server.pid) - cpu_before
    rss = process_rss_probe(server.pid)()
    return Listing(count, first, times, size, cpu_seconds, rss)


def report(listing: Listing) -> str:
    times = listing.times
    median_ms = statistics.median(times) * 1000
    row = [
        f"{listing.count}",
        f"{len(times)}",
        f"{median_ms:.1f}",
        f"{percentile(times, 0.95) * 1000:.1f}",
        f"{min(times) * 1000:.1f}",
        f"{listing.first * 1000:.1f}",
        f"{listing.server_cpu_seconds / len(times) * 1000:.1f}",
        f"{listing.response_bytes / 1024:.0f}",
        f"{listing.server_rss / MIB:.0f}",
        "ok" if median_ms < TARGET_MEDIAN_MS else "miss",
    ]
    header = [
        "packages",
        "requests",
        "median ms",
        "p95 ms",
        "min ms",
        "first ms",
        "server CPU ms/request",
        "response KiB",
        "server RSS after MiB",
        "target",
    ]
    notes = (
        f"Target: median < {TARGET_MEDIAN_MS:.0f} ms for the full listing "
        "(GET /api/admin/packages, no limit), timed by the client over loopback HTTP "
        "with keep-alive, body read in full. First: the first listing after the start, "
        "not counted in the others; it builds every item, later ones reuse the items of "
        "unchanged rows. "
        "Server CPU: user + system time of the server process over the timed requests, "
        "divided by their number; less sensitive to other load than the wall times."
    )
    return markdown_table(header, [row]) + "\n\n" + notes + "\n" + machine_summary()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=10_000, help="packages to insert")
    parser.add_argument("--requests", type=int, default=50, help="timed listings")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="ods-bench-list-"))
    try:
        data_dir = workdir / "data"
        with running_server(data_dir, workdir / "server.log") as server:
            progress(f"inserting {args.count} packages")
            insert_packages(data_dir / "ods.db", args.count)
            with logged_in_client(server, CLIENT_TIMEOUT) as client:
                progress(f"timing {args.requests} listings")
                listing = measure(server, client, args.count, args.requests)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(report(listing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
