"""Chaos soak: a mesh of real `ods serve` processes under uploads, replacements, deletes
and stage changes on random nodes, with nodes killed (SIGKILL) and started again; then
the time to converge, the bytes sent between peers beyond one copy per receiver, and the
peak RSS of any node. Prints a Markdown table; progress on stderr.

    .venv/bin/python bench/chaos.py --nodes 5 --seconds 120 --runs 4
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers.chaos import MIB, ChaosReport, run_chaos


def row(run: int, report: ChaosReport) -> str:
    settled = "no" if report.converged_after is None else f"{report.converged_after:.1f} s"
    ops = sum(report.operations.values())
    return (
        f"| {run} | {report.nodes} | {report.seconds:.0f} s | {ops} | {report.kills} "
        f"| {report.packages} | {settled} | {report.refetched_bytes / MIB:.1f} MiB "
        f"| {report.peak_rss / MIB:.0f} MiB | {len(report.problems)} |"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--settle", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep", action="store_true", help="keep the data dirs and logs of a run with problems"
    )
    args = parser.parse_args()
    print(
        "| run | nodes | chaos | operations | kills | packages | converged after "
        "| refetched | peak RSS | problems |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    failed = 0
    for run in range(1, args.runs + 1):
        print(f"chaos: run {run} of {args.runs}", file=sys.stderr)
        root = Path(tempfile.mkdtemp(prefix="ods-chaos-"))
        report = await run_chaos(
            root, nodes=args.nodes, seconds=args.seconds, settle=args.settle, seed=args.seed + run
        )
        if args.keep and report.problems:
            print(f"chaos: run {run}: kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root)
        print(row(run, report), flush=True)
        done = ", ".join(f"{kind} {count}" for kind, count in sorted(report.operations.items()))
        print(f"chaos: run {run}: {done}", file=sys.stderr)
        for problem in report.problems:
            print(f"chaos: run {run}: {problem}", file=sys.stderr)
        failed += bool(report.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
