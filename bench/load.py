"""Load: many clients at once on one real `ods serve` (the embedded default, no Nginx),
each listing, reading details, downloading 1 MiB packages from /share and uploading
256 KiB ones (deleting them again), on SQLite and on MariaDB. Prints a Markdown table of
requests, statuses and p50/p99 latency per operation, and the server's peak RSS;
progress on stderr. Exits 1 if any answer was a 5xx or unexpected.

    .venv/bin/python bench/load.py --clients 200 --seconds 60 --backends sqlite,mariadb
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers.load import MIB, OPERATIONS, LoadReport, database_for, run_load


def rows(report: LoadReport) -> list[str]:
    lines = []
    for operation in OPERATIONS:
        count = len(report.latencies[operation])
        statuses = sorted(
            (status, n) for (name, status), n in report.statuses.items() if name == operation
        )
        lines.append(
            f"| {report.backend} | {operation} | {count} | {count / report.seconds:.1f} "
            f"| {', '.join(f'{status}: {n}' for status, n in statuses)} "
            f"| {report.percentile(operation, 0.5) * 1000:.0f} ms "
            f"| {report.percentile(operation, 0.99) * 1000:.0f} ms |"
        )
    return lines


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--backends", default="sqlite,mariadb")
    args = parser.parse_args()
    print("| backend | operation | requests | per second | statuses | p50 | p99 |")
    print("|---|---|---|---|---|---|---|")
    bad = 0
    summary = []
    for backend in args.backends.split(","):
        print(f"load: {backend}, {args.clients} clients for {args.seconds:.0f} s", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="ods-load-") as root:
            async with database_for(backend) as database_url:
                report = await run_load(
                    Path(root),
                    backend=backend,
                    database_url=database_url,
                    clients=args.clients,
                    seconds=args.seconds,
                )
        print("\n".join(rows(report)), flush=True)
        summary.append(
            f"{backend}: {report.requests} requests, {report.server_errors} 5xx, "
            f"{sum(report.transport_errors.values())} transport errors, "
            f"peak RSS {report.peak_rss / MIB:.0f} MiB"
        )
        for problem in [*report.unexpected, *report.transport_errors]:
            print(f"load: {backend}: {problem}", file=sys.stderr)
        bad += bool(report.server_errors or report.unexpected or report.transport_errors)
    print()
    for line in summary:
        print(f"- {line}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
