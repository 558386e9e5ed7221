"""Job rows on every backend: recording a key twice re-arms it, many at once never fail.

These run on a bare database, without a server whose scheduler would pick up the rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, update

from ods.core.config import normalise_database_url
from ods.core.db import Database
from ods.core.models import Job
from ods.jobs import runner
from ods.jobs.kinds import AnnouncePackage, Fetch
from ods.jobs.runner import JobStatus


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(normalise_database_url(database_url))
    try:
        yield database
    finally:
        await database.dispose()


async def job_row(db: Database, key: str) -> Job:
    async with db.session() as session:
        return (await session.execute(select(Job).where(Job.key == key))).scalar_one()


async def set_row(db: Database, key: str, **values: object) -> None:
    async with db.transaction() as session:
        await session.execute(update(Job).where(Job.key == key).values(**values))


async def test_a_finished_job_is_rearmed_and_a_running_one_keeps_its_state(db: Database) -> None:
    first = Fetch(uuid="u-1", peer="a" * 32)
    async with db.transaction() as session:
        key = await runner.add_job(session, first)
    await set_row(db, key, status=JobStatus.FAILED, attempts=8, last_error="gone")

    again = Fetch(uuid="u-1", peer="b" * 32)
    async with db.transaction() as session:
        assert await runner.add_job(session, again) == key
    row = await job_row(db, key)
    assert (row.status, row.attempts, row.last_error) == (JobStatus.PENDING, 0, None)
    assert Fetch.model_validate_json(row.payload) == again

    await set_row(db, key, status=JobStatus.RUNNING, attempts=3, last_error="slow")
    async with db.transaction() as session:
        await runner.add_job(session, first)
    row = await job_row(db, key)
    assert (row.status, row.attempts, row.last_error) == (JobStatus.RUNNING, 3, "slow")
    assert Fetch.model_validate_json(row.payload) == first


async def test_many_transactions_recording_one_key_at_once_all_succeed(db: Database) -> None:
    job = AnnouncePackage(uuid="same-for-everyone")

    async def record() -> str:
        async with db.transaction() as session:
            return await runner.add_job(session, job)

    keys = await asyncio.gather(*(record() for _ in range(30)))
    assert set(keys) == {job.key()}
    async with db.session() as session:
        rows = (await session.execute(select(Job).where(Job.key == job.key()))).scalars().all()
    assert len(rows) == 1
