"""A peer that trickles its transfers neither stalls the mesh nor keeps its fetches.

Real `ods serve` processes: the receiver reaches the dripping peer through a
proxy that passes chunk-run bodies a byte a second (under every stall
timeout, far under the rate floor), and a good peer directly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.helpers.packages import MIB
from tests.helpers.processes.mesh import mesh_of, random_file
from tests.helpers.processes.proxy import DripProxy

pytestmark = pytest.mark.e2e

ANNOUNCED = 9  # packages the dripping peer announces: more than the receiver's 8 job slots
PEER_JOBS = 2  # the receiver's share per peer: a quarter of its 8 job slots
# The rate floor's window: longer than the bound below, so only the per-peer
# share, not the floor, can bring the good package in time.
STALL_SECONDS = 12
BOUND_SECONDS = 8.0


async def wait_for(what: str, seconds: float, check: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_a_dripping_peer_neither_holds_every_job_slot_nor_keeps_its_fetches(
    tmp_path: Path,
) -> None:
    with mesh_of(tmp_path, 3, ODS_FETCH_STALL_SECONDS=str(STALL_SECONDS)) as nodes:
        for node in nodes:
            await node.login()
            await node.configure("Dev")
        receiver, dripping, good = nodes
        async with DripProxy(dripping.port, seconds_per_byte=1.0) as link:
            await receiver.register_with(dripping, url=link.url)
            await receiver.register_with(good)
            for number in range(ANNOUNCED):
                path = tmp_path / f"Trickle-{number}.pkg"
                random_file(path, 256 * 1024)
                await dripping.upload(path)

            async def slots_held() -> bool:
                return link.dripping >= PEER_JOBS

            await wait_for("the receiver never fetched from the dripping peer", 30, slots_held)

            path = tmp_path / "Firefox.pkg"
            sha256 = random_file(path, 3 * MIB + 7)
            started = time.monotonic()
            await good.upload(path)
            await receiver.wait_served("Firefox.pkg", sha256, seconds=60)
            delay = time.monotonic() - started
            print(f"\nthe good peer's package reached the receiver {delay:.2f} s after its upload")
            assert delay < BOUND_SECONDS

            async def dropped() -> bool:
                error = str(await receiver.peer_state(dripping, "last_error"))
                return "below the minimum of 64.0 KB/s" in error

            await wait_for("the dripping peer was never dropped", STALL_SECONDS + 20, dropped)
            assert link.most_dripping == PEER_JOBS
            # Dropped, not given up on: none Public, none Failed. A fetch that
            # has not started yet has no package row.
            statuses = [
                None if package is None else package["status"]
                for package in [
                    await receiver.package(f"Trickle-{number}.pkg") for number in range(ANNOUNCED)
                ]
            ]
            assert set(statuses) <= {"Downloading", None}, statuses
            assert statuses.count("Downloading") >= PEER_JOBS, statuses
