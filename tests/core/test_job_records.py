"""Job rows on every backend: recording a key twice re-arms it, many at once never fail."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from sqlalchemy import select, update

from ods.core.context import Context
from ods.core.models import Job
from ods.jobs import runner
from ods.jobs.kinds import AnnouncePackage, Fetch
from ods.jobs.runner import JobStatus


async def job_row(context: Context, key: str) -> Job:
    async with context.db.session() as session:
        return (await session.execute(select(Job).where(Job.key == key))).scalar_one()


async def set_row(context: Context, key: str, **values: object) -> None:
    async with context.db.transaction() as session:
        await session.execute(update(Job).where(Job.key == key).values(**values))


async def test_a_finished_job_is_rearmed_and_a_running_one_keeps_its_state(app: FastAPI) -> None:
    context: Context = app.state.context
    first = Fetch(uuid="u-1", peer="a" * 32)
    async with context.db.transaction() as session:
        key = await runner.add_job(session, first)
    await set_row(context, key, status=JobStatus.FAILED, attempts=8, last_error="gone")

    again = Fetch(uuid="u-1", peer="b" * 32)
    async with context.db.transaction() as session:
        assert await runner.add_job(session, again) == key
    row = await job_row(context, key)
    assert (row.status, row.attempts, row.last_error) == (JobStatus.PENDING, 0, None)
    assert Fetch.model_validate_json(row.payload) == again

    await set_row(context, key, status=JobStatus.RUNNING, attempts=3, last_error="slow")
    async with context.db.transaction() as session:
        await runner.add_job(session, first)
    row = await job_row(context, key)
    assert (row.status, row.attempts, row.last_error) == (JobStatus.RUNNING, 3, "slow")
    assert Fetch.model_validate_json(row.payload) == first


async def test_many_transactions_recording_one_key_at_once_all_succeed(app: FastAPI) -> None:
    context: Context = app.state.context
    job = AnnouncePackage(uuid="same-for-everyone")

    async def record() -> str:
        async with context.db.transaction() as session:
            return await runner.add_job(session, job)

    keys = await asyncio.gather(*(record() for _ in range(30)))
    assert set(keys) == {job.key()}
    async with context.db.session() as session:
        rows = (await session.execute(select(Job).where(Job.key == job.key()))).scalars().all()
    assert len(rows) == 1
