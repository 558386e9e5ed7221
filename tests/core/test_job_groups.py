"""One peer's jobs take at most their share of the job slots, on every backend.

The runner and the in-process queue run real job rows on a bare database
(no server, so no scheduler picks the rows up), with handlers the tests hold
open; the payloads are the real peer job kinds.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from ods.core.config import Settings
from ods.core.context import Context
from ods.core.models import Job
from ods.jobs import runner
from ods.jobs.groups import LONGEST_WAIT_SECONDS, JobGroups
from ods.jobs.kinds import AnnouncePackage, Fetch, JobPayload, Notify, Reconcile
from ods.jobs.queue import InProcessQueue
from ods.jobs.registry import JobHandler, JobRegistry
from ods.jobs.runner import JobStatus

SLOW, GOOD = "s" * 32, "g" * 32
WAIT = 20.0  # the longest a test waits for something that should come soon


@dataclass
class Handlers:
    """Fetch handlers that hold the slow peer's jobs open until `release` is set."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    running: dict[str, int] = field(default_factory=dict)
    most: dict[str, int] = field(default_factory=dict)

    async def fetch(self, context: Context, job: Fetch) -> None:
        self.running[job.peer] = self.running.get(job.peer, 0) + 1
        self.most[job.peer] = max(self.most.get(job.peer, 0), self.running[job.peer])
        try:
            if job.peer == SLOW:
                await self.release.wait()
        finally:
            self.running[job.peer] -= 1


@pytest.fixture
async def context(settings: Settings) -> AsyncIterator[Context]:
    # The defaults: 8 job slots, so 2 for one peer.
    made = Context.from_settings(settings)
    try:
        yield made
    finally:
        await made.close()


def start_queue(context: Context, registry: JobRegistry) -> None:
    async def run(key: str) -> float | None:
        return await runner.run_job(context, registry, key)

    context.queue = InProcessQueue(run, context.settings.job_concurrency)


async def add(context: Context, payloads: list[Fetch]) -> list[str]:
    async with context.db.transaction() as session:
        keys = [await runner.add_job(session, payload) for payload in payloads]
    await runner.dispatch(context.queue, keys)
    return keys


async def rows(context: Context, keys: list[str]) -> list[Job]:
    async with context.db.session() as session:
        found = (await session.execute(select(Job).where(Job.key.in_(keys)))).scalars().all()
    return sorted(found, key=lambda row: row.key)


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def test_a_slow_peer_holds_only_its_share_and_its_waiting_jobs_count_no_attempt(
    context: Context,
) -> None:
    handlers = Handlers()
    # One attempt allowed: a wait counted as an attempt would fail the job.
    registry = JobRegistry([JobHandler(Fetch, handlers.fetch, max_attempts=1)])
    start_queue(context, registry)
    assert context.settings.job_group_limit == 2
    slow = await add(context, [Fetch(uuid=f"slow-{n}", peer=SLOW) for n in range(9)])

    async def two_slow_running() -> bool:
        return handlers.running.get(SLOW, 0) == 2

    await until(two_slow_running, "the slow peer's jobs never started")
    started = time.monotonic()
    (good,) = await add(context, [Fetch(uuid="good", peer=GOOD)])

    async def good_done() -> bool:
        return (await rows(context, [good]))[0].status == JobStatus.DONE

    await until(good_done, "the good peer's job waited behind the slow peer's")
    print(f"the good peer's job was done {time.monotonic() - started:.3f} s after it was added")
    assert time.monotonic() - started < 2

    await asyncio.sleep(1.5)  # the waiting jobs ask again, and are turned away again
    states = [(row.status, row.attempts) for row in await rows(context, slow)]
    assert sorted(states) == sorted([(JobStatus.RUNNING, 1)] * 2 + [(JobStatus.PENDING, 0)] * 7)
    assert context.part(JobGroups).running == {f"peer:{SLOW}": 2}

    handlers.release.set()

    async def all_done() -> bool:
        return all(row.status == JobStatus.DONE for row in await rows(context, slow))

    await until(all_done, "the slow peer's waiting jobs never ran")
    assert [row.attempts for row in await rows(context, slow)] == [1] * 9
    assert handlers.most == {SLOW: 2, GOOD: 1}
    assert context.part(JobGroups).running == {}
    assert context.part(JobGroups).waiting == {}


async def test_a_job_that_fails_retries_or_crashes_gives_its_place_back(
    context: Context,
) -> None:
    calls: list[str] = []

    async def fetch(context: Context, job: Fetch) -> None:
        calls.append(job.uuid)
        if job.uuid == "retry":
            raise runner.RetryLater("the peer is down", defer=3600)
        if job.uuid == "fail":
            raise runner.JobFailed("the peer's file is not acceptable")
        if job.uuid == "crash" and calls.count("crash") == 1:
            raise RuntimeError("a bug")

    registry = JobRegistry([JobHandler(Fetch, fetch, max_attempts=5)])
    start_queue(context, registry)
    uuids = ["retry", "fail", "crash", "more", "last"]
    keys = await add(context, [Fetch(uuid=uuid, peer=SLOW) for uuid in uuids])
    expected = [
        (JobStatus.PENDING, 1),  # retry: in an hour
        (JobStatus.FAILED, 1),
        (JobStatus.DONE, 2),  # crash: retried after its back-off
        (JobStatus.DONE, 1),
        (JobStatus.DONE, 1),
    ]

    async def settled() -> bool:
        found = {row.key: (row.status, row.attempts) for row in await rows(context, keys)}
        return [found[key] for key in keys] == expected

    await until(settled, "a job stayed behind one that failed, retried or crashed")
    assert sorted(calls) == sorted([*uuids, "crash"])
    assert context.part(JobGroups).running == {}


async def test_jobs_without_a_group_are_never_held_back(context: Context) -> None:
    release = asyncio.Event()
    running = 0
    most = 0

    async def announce(context: Context, job: AnnouncePackage) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1

    registry = JobRegistry([JobHandler(AnnouncePackage, announce)])
    start_queue(context, registry)
    async with context.db.transaction() as session:
        keys = [await runner.add_job(session, AnnouncePackage(uuid=f"u-{n}")) for n in range(6)]
    await runner.dispatch(context.queue, keys)

    async def six_running() -> bool:
        return running == 6

    await until(six_running, "jobs without a group were held back")
    release.set()
    assert most == 6
    assert context.part(JobGroups).running == {}


def test_every_job_with_a_peer_is_in_that_peers_group() -> None:
    peer = "p" * 32
    payloads: list[JobPayload] = [
        Fetch(uuid="u", peer=peer),
        Notify(uuid="u", peer=peer),
        Reconcile(peer=peer),
    ]
    assert {payload.group() for payload in payloads} == {f"peer:{peer}"}
    assert AnnouncePackage(uuid="u").group() is None


def test_the_limit_is_a_quarter_of_the_slots_unless_set() -> None:
    assert Settings(job_concurrency=8).job_group_limit == 2
    assert Settings(job_concurrency=3).job_group_limit == 1
    assert Settings(job_concurrency=40).job_group_limit == 10
    assert Settings(job_concurrency=8, peer_job_limit=5).job_group_limit == 5


def test_a_waiting_job_asks_again_less_and_less_often() -> None:
    groups = JobGroups(limit=1)
    assert groups.enter("first", "peer:a")
    assert not groups.enter("second", "peer:a")
    assert groups.enter("other", "peer:b")
    assert groups.still_full("second")

    waits = [groups.wait("second") for _ in range(12)]

    assert 0.5 * 0.75 <= waits[0] <= 0.5 * 1.25
    assert all(later > earlier for earlier, later in itertools.pairwise(waits[:5]))
    assert max(waits) <= LONGEST_WAIT_SECONDS * 1.25
    groups.leave("peer:a")
    assert not groups.still_full("second")
    assert groups.enter("second", "peer:a")
    assert groups.waiting == {}
