"""Job records and the one function every queue backend runs.

A job is a row (`jobs`) with a unique key, so submitting the same work twice
is harmless. Jobs are added inside the transaction that made them necessary
and enqueued after it commits. Running a job claims the row, calls its
handler outside any transaction, and records the outcome: done, retry later
with back-off, or failed. At start-up, pending work and work whose runner
died is enqueued again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.models import Job, utcnow

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
LEASE = dt.timedelta(minutes=5)
MAX_BACKOFF_SECONDS = 300.0

Handler = Callable[["Context", dict[str, Any]], Awaitable[None]]
FailureHandler = Callable[["Context", dict[str, Any], str], Awaitable[None]]


class RetryLater(Exception):
    """The job could not finish now; run it again after a back-off."""


class JobFailed(Exception):
    """The job cannot succeed; do not retry."""


class JobKind:
    def __init__(
        self, name: str, handler: Handler, max_attempts: int, on_failure: FailureHandler | None
    ) -> None:
        self.name = name
        self.handler = handler
        self.max_attempts = max_attempts
        self.on_failure = on_failure


KINDS: dict[str, JobKind] = {}


def job(
    kind: str, *, max_attempts: int = 8, on_failure: FailureHandler | None = None
) -> Callable[[Handler], Handler]:
    """Register a handler for a kind of job; `on_failure` runs when it gives up."""

    def register(handler: Handler) -> Handler:
        KINDS[kind] = JobKind(kind, handler, max_attempts, on_failure)
        return handler

    return register


def backoff(attempts: int) -> float:
    base = min(MAX_BACKOFF_SECONDS, 2.0 ** max(0, attempts - 1))
    return base * random.uniform(0.75, 1.25)  # noqa: S311 - jitter, not security


async def add_job(
    session: AsyncSession, kind: str, key: str, payload: dict[str, Any] | None = None
) -> None:
    """Record a job in the caller's transaction; an existing job of that key is re-armed."""
    body = json.dumps(payload or {}, sort_keys=True)
    existing = (
        await session.execute(select(Job).where(Job.key == key).with_for_update())
    ).scalar_one_or_none()
    if existing is None:
        try:
            async with session.begin_nested():
                session.add(Job(key=key, kind=kind, payload=body, status=PENDING))
            return
        except IntegrityError:
            existing = (await session.execute(select(Job).where(Job.key == key))).scalar_one()
    if existing.status in (DONE, FAILED):
        existing.status = PENDING
        existing.attempts = 0
        existing.last_error = None
    existing.payload = body
    existing.run_after = utcnow()


async def dispatch(context: Context, keys: Iterable[str]) -> None:
    """Enqueue jobs whose rows are committed."""
    for key in keys:
        await context.queue.enqueue(key, attempt=0)


async def submit(context: Context, kind: str, key: str, payload: dict[str, Any]) -> None:
    async with context.db.transaction() as session:
        await add_job(session, kind, key, payload)
    await dispatch(context, [key])


async def _claim(context: Context, key: str) -> Job | None:
    async with context.db.transaction() as session:
        now = utcnow()
        claimed = await session.execute(
            update(Job)
            .where(Job.key == key, Job.status == PENDING)
            .values(status=RUNNING, attempts=Job.attempts + 1, updated=now)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return (await session.execute(select(Job).where(Job.key == key))).scalar_one()


async def _finish(context: Context, key: str, status: str, error: str | None = None) -> None:
    async with context.db.transaction() as session:
        await session.execute(
            update(Job).where(Job.key == key).values(status=status, last_error=error)
        )


async def _give_up(
    context: Context, kind: JobKind, key: str, payload: dict[str, Any], reason: str
) -> None:
    await _finish(context, key, FAILED, reason)
    context.metrics.jobs.labels(kind.name, "failed").inc()
    if kind.on_failure is not None:
        await kind.on_failure(context, payload, reason)


async def run_job(context: Context, key: str) -> None:
    """Claim the job, run its handler, record the outcome. Safe to call twice."""
    row = await _claim(context, key)
    if row is None:
        return
    kind = KINDS.get(row.kind)
    if kind is None:
        await _finish(context, key, FAILED, f"unknown job kind {row.kind!r}")
        return
    payload = json.loads(row.payload)
    try:
        await kind.handler(context, payload)
    except JobFailed as exc:
        log.warning("job %s failed: %s", key, exc)
        await _give_up(context, kind, key, payload, str(exc))
        return
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        if not isinstance(exc, RetryLater):
            log.exception("job %s raised", key)
        if row.attempts >= kind.max_attempts:
            log.warning("job %s failed after %d attempts: %s", key, row.attempts, reason)
            await _give_up(context, kind, key, payload, reason)
            return
        context.metrics.jobs.labels(row.kind, "retry").inc()
        delay = backoff(row.attempts)
        log.info("job %s will retry in %.1f s: %s", key, delay, reason)
        async with context.db.transaction() as session:
            await session.execute(
                update(Job)
                .where(Job.key == key)
                .values(
                    status=PENDING,
                    last_error=reason,
                    run_after=utcnow() + dt.timedelta(seconds=delay),
                )
            )
        await context.queue.enqueue(key, attempt=row.attempts, defer=delay)
        return
    await _finish(context, key, DONE)
    context.metrics.jobs.labels(row.kind, "done").inc()


async def resume_jobs(context: Context, *, reclaim_all_running: bool) -> int:
    """Enqueue pending jobs, and running ones whose runner is gone. Returns how many."""
    now = utcnow()
    async with context.db.transaction() as session:
        stale = Job.status == RUNNING
        if not reclaim_all_running:
            stale = stale & (Job.updated < now - LEASE)
        await session.execute(update(Job).where(stale).values(status=PENDING))
        rows = (
            await session.execute(
                select(Job.key, Job.attempts, Job.run_after).where(Job.status == PENDING)
            )
        ).all()
    for key, attempts, run_after in rows:
        defer = max(0.0, (run_after - now).total_seconds())
        await context.queue.enqueue(key, attempt=attempts, defer=defer)
    return len(rows)


async def touch(context: Context, key: str) -> None:
    """Renew a long job's lease."""
    async with context.db.transaction() as session:
        await session.execute(update(Job).where(Job.key == key).values(updated=utcnow()))
