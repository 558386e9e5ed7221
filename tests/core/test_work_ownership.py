"""Who may take over a running job: only a process that is gone loses its jobs.

Real databases (every backend), real process rows; the context's queue is
never given a job it could run now (the jobs wait out a long back-off).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, update

from ods import lifecycle
from ods.core.config import Settings
from ods.core.context import Context
from ods.core.models import Job, Package, Process, utcnow
from ods.core.ownership import this_machine
from ods.jobs import owners, runner
from ods.jobs.kinds import Fetch
from ods.jobs.owners import Heartbeat
from ods.jobs.runner import JobStatus
from ods.mesh import takeover

UUID = "7d1c2b3a-4f5e-4d6c-8b7a-9c8d7e6f5a4b"


@pytest.fixture
async def context(settings: Settings) -> AsyncIterator[Context]:
    context = lifecycle.build_context(settings)
    try:
        yield context
    finally:
        await context.close()


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


async def running_fetch(context: Context, owner: str, *, seen: dt.datetime, pid: int) -> str:
    """A Downloading package whose fetch `owner` runs; `owner` last renewed its lease at `seen`."""
    async with context.db.transaction() as session:
        session.add(Process(id=owner, machine=this_machine(), pid=pid, role="worker", seen=seen))
        session.add(
            Package(
                uuid=UUID,
                filename="Firefox.pkg",
                file_size=5 * 2**20,
                sha1="0" * 40,
                sha256="0" * 64,
                stage="Prod",
                status="Downloading",
            )
        )
        key = await runner.add_job(session, Fetch(uuid=UUID, peer="a" * 32))
        await session.execute(
            update(Job)
            .where(Job.key == key)
            .values(
                status=JobStatus.RUNNING,
                owner=owner,
                updated=seen,
                run_after=utcnow() + dt.timedelta(hours=1),
            )
        )
    return key


async def state(context: Context, key: str) -> tuple[str, str | None, str | None]:
    async with context.db.session() as session:
        job = (await session.execute(select(Job).where(Job.key == key))).scalar_one()
        reason = await session.scalar(select(Package.status_reason).where(Package.uuid == UUID))
    return job.status, job.owner, reason


async def test_a_live_processs_running_job_is_left_alone(context: Context) -> None:
    key = await running_fetch(context, "other.1.live", seen=utcnow(), pid=os.getpid())
    resumed = await takeover.resume(context)
    assert resumed.taken_over == []
    assert await state(context, key) == (JobStatus.RUNNING, "other.1.live", None)


@pytest.mark.parametrize("gone", ["lease ran out", "process ended"])
async def test_a_gone_processs_fetch_is_taken_over_and_its_package_says_so(
    context: Context, gone: str
) -> None:
    if gone == "lease ran out":
        seen = utcnow() - dt.timedelta(seconds=context.settings.work_lease + 5)
        key = await running_fetch(context, "other.2.late", seen=seen, pid=os.getpid())
        owner = "other.2.late"
    else:
        key = await running_fetch(context, "other.3.dead", seen=utcnow(), pid=dead_pid())
        owner = "other.3.dead"
    resumed = await takeover.resume(context)
    assert [item.key for item in resumed.taken_over] == [key]
    status, new_owner, reason = await state(context, key)
    assert (status, new_owner) == (JobStatus.PENDING, None)
    assert reason is not None
    assert reason.startswith("Waiting to be taken over")
    assert owner in reason


async def test_a_clean_stop_hands_running_jobs_back(context: Context) -> None:
    heartbeat = Heartbeat(context, "worker")
    await heartbeat.start()
    key = await running_fetch(context, "other.4.live", seen=utcnow(), pid=os.getpid())
    async with context.db.transaction() as session:
        await session.execute(update(Job).where(Job.key == key).values(owner=context.owner.id))
    await heartbeat.stop()
    assert (await state(context, key))[:2] == (JobStatus.PENDING, None)
    async with context.db.session() as session:
        assert await session.get(Process, context.owner.id) is None


async def test_a_stop_during_a_renewal_lets_it_finish_then_hands_work_back(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A renewal cancelled half-way through its write could keep an SQLite database
    locked for the next start; a stop waits for it instead."""
    context = lifecycle.build_context(settings.model_copy(update={"work_lease": 3}))
    renewing = asyncio.Event()
    finished: list[str] = []

    async def slow_renew(context: Context, role: str) -> None:
        async with context.db.transaction() as session:
            await session.execute(
                update(Process).where(Process.id == context.owner.id).values(seen=utcnow())
            )
            renewing.set()
            await asyncio.sleep(0.5)
        finished.append(role)

    monkeypatch.setattr(owners, "renew", slow_renew)
    try:
        heartbeat = Heartbeat(context, "worker")
        await heartbeat.start()
        await asyncio.wait_for(renewing.wait(), 10)
        await heartbeat.stop()
        assert finished == ["worker"]
        async with context.db.session() as session:
            assert await session.get(Process, context.owner.id) is None
    finally:
        await context.close()
