"""Job records and the one function every queue backend runs.

A job is a row (`jobs`) with a unique key, so submitting the same work twice
is harmless. Jobs are added inside the transaction that made them necessary
and enqueued after it commits. Running a job claims the row, calls its
handler outside any transaction, and records the outcome: done, retry later
with back-off, or failed. A job whose group (one peer's jobs) already has its
limit running in this process is not claimed: it waits in the queue
(`groups`). A running job's row names its owner, the process running it,
whose lease (`owners`) is renewed while it runs; pending jobs, and running
ones whose owner is gone, are enqueued again at start-up and by the
scheduler, never a live process's.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import case, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.errors import OdsError
from ods.core.logs import Repeats
from ods.core.models import Job, utcnow
from ods.jobs.groups import JobGroups
from ods.jobs.kinds import JobPayload
from ods.jobs.owners import lease, live_owners
from ods.jobs.registry import JobHandler, JobRegistry
from ods.jobs.status import JobStatus as JobStatus  # callers use jobs.JobStatus

if TYPE_CHECKING:
    from ods.core.context import Context, JobQueue

log = logging.getLogger(__name__)


MAX_BACKOFF_SECONDS = 300.0
# Failures that are conditions of the world, not bugs: logged without a traceback.
EXPECTED = (OdsError, OSError, SQLAlchemyError)


class RetryLater(Exception):
    """The job could not finish now; run it again after a back-off (or after `defer` seconds)."""

    def __init__(self, reason: str, *, defer: float | None = None) -> None:
        super().__init__(reason)
        self.defer = defer


class JobFailed(Exception):
    """The job cannot succeed; do not retry."""


def backoff(attempts: int) -> float:
    base = min(MAX_BACKOFF_SECONDS, 2.0 ** max(0, attempts - 1))
    return base * random.uniform(0.75, 1.25)  # noqa: S311 - jitter, not security


def _upsert(dialect: str, row: dict[str, Any]) -> Any:
    """INSERT the job, or re-arm the row of its key, in one statement.

    One statement instead of a locking read then an insert: on MariaDB, a
    `SELECT … FOR UPDATE` of a key that does not exist yet takes a gap lock,
    and two transactions adding the same key then deadlock each other. A
    finished (done or failed) job of that key starts afresh; a pending or
    running one keeps its state and takes the new payload.
    """
    if dialect in ("mysql", "mariadb"):
        return _mysql_upsert(row)
    # PostgreSQL and SQLite evaluate every SET against the old row.
    stmt = postgresql.insert(Job) if dialect == "postgresql" else sqlite.insert(Job)
    stmt = stmt.values(**row)
    finished = Job.status.in_((JobStatus.DONE, JobStatus.FAILED))
    return stmt.on_conflict_do_update(
        index_elements=[Job.key],
        set_={
            "attempts": case((finished, 0), else_=Job.attempts),
            "last_error": case((finished, None), else_=Job.last_error),
            "payload": stmt.excluded.payload,
            "run_after": stmt.excluded.run_after,
            "updated": stmt.excluded.updated,
            "status": case((finished, JobStatus.PENDING.value), else_=Job.status),
        },
    )


def _mysql_upsert(row: dict[str, Any]) -> Any:
    stmt = mysql.insert(Job).values(**row)
    finished = Job.status.in_((JobStatus.DONE, JobStatus.FAILED))
    # MySQL assigns left to right and later expressions see earlier ones:
    # `status` goes last, so the others still see the old status.
    return stmt.on_duplicate_key_update(
        [
            ("attempts", case((finished, 0), else_=Job.attempts)),
            ("last_error", case((finished, None), else_=Job.last_error)),
            ("payload", stmt.inserted.payload),
            ("run_after", stmt.inserted.run_after),
            ("updated", stmt.inserted.updated),
            ("status", case((finished, JobStatus.PENDING.value), else_=Job.status)),
        ]
    )


async def add_job(session: AsyncSession, payload: JobPayload) -> str:
    """Record a job in the caller's transaction; an existing job of that key is re-armed.

    Returns the key, to `dispatch` once the transaction has committed.
    """
    key = payload.key()
    now = utcnow()
    row = {
        "key": key,
        "kind": payload.kind,
        "payload": payload.model_dump_json(),
        "status": JobStatus.PENDING.value,
        "attempts": 0,
        "run_after": now,
        "created": now,
        "updated": now,
    }
    await session.execute(_upsert(session.get_bind().dialect.name, row))
    return key


async def dispatch(queue: JobQueue, keys: Iterable[str]) -> None:
    """Enqueue jobs whose rows are committed."""
    for key in keys:
        await queue.enqueue(key, attempt=0)


async def submit(context: Context, payload: JobPayload) -> None:
    """Record a job in a transaction of its own and enqueue it."""
    async with context.db.transaction() as session:
        key = await add_job(session, payload)
    await dispatch(context.queue, [key])


async def _pending(context: Context, key: str) -> tuple[str, str] | None:
    """The kind and payload of job `key` if it is pending (read, not claimed)."""
    async with context.db.session() as session:
        found = (
            await session.execute(
                select(Job.kind, Job.payload).where(Job.key == key, Job.status == JobStatus.PENDING)
            )
        ).one_or_none()
    return None if found is None else (found.kind, found.payload)


def _group(registry: JobRegistry, kind: str, payload: str) -> str | None:
    handler = registry.get(kind)
    if handler is None:
        return None
    try:
        group: str | None = handler.payload.model_validate_json(payload).group()
    except ValidationError:
        return None  # failed when it is claimed
    return group


async def _take(context: Context, key: str) -> Job | None:
    async with context.db.transaction() as session:
        now = utcnow()
        claimed = await session.execute(
            update(Job)
            .where(Job.key == key, Job.status == JobStatus.PENDING)
            .values(
                status=JobStatus.RUNNING,
                attempts=Job.attempts + 1,
                updated=now,
                owner=context.owner.id,
            )
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return (await session.execute(select(Job).where(Job.key == key))).scalar_one()


def _mine(context: Context, key: str) -> Any:
    """The job's row while this process owns it: once taken over, the new owner records
    the outcome."""
    return (Job.key == key) & (Job.owner == context.owner.id)


async def _finish(context: Context, key: str, status: JobStatus, error: str | None = None) -> None:
    async with context.db.transaction() as session:
        await session.execute(
            update(Job)
            .where(_mine(context, key))
            .values(status=status, last_error=error, owner=None)
        )


async def _give_up(
    context: Context, handler: JobHandler[Any], key: str, payload: JobPayload, reason: str
) -> None:
    await _finish(context, key, JobStatus.FAILED, reason)
    context.metrics.jobs.labels(handler.kind, "failed").inc()
    if handler.on_failure is not None:
        await handler.on_failure(context, payload, reason)


async def _retry(context: Context, row: Job, reason: str, defer: float | None) -> None:
    context.metrics.jobs.labels(row.kind, "retry").inc()
    delay = backoff(row.attempts) if defer is None else defer
    log.info("job %s will retry in %.1f s: %s", row.key, delay, reason)
    async with context.db.transaction() as session:
        await session.execute(
            update(Job)
            .where(_mine(context, row.key))
            .values(
                status=JobStatus.PENDING,
                owner=None,
                last_error=reason,
                run_after=utcnow() + dt.timedelta(seconds=delay),
            )
        )
    await context.queue.enqueue(row.key, attempt=row.attempts, defer=delay)


async def run_job(context: Context, registry: JobRegistry, key: str) -> float | None:
    """Claim the job, run its handler, record the outcome. Safe to call twice.

    Returns None; or, when the job's group already has its limit of jobs
    running in this process, the seconds after which to run it again. Such a
    job is not claimed: it stays pending and counts no attempt (a busy peer
    must never make a job fail). The queue that ran it puts it back.
    """
    groups = context.part(JobGroups)
    if groups.still_full(key):
        return groups.wait(key)
    pending = await _pending(context, key)
    if pending is None:
        groups.forget(key)
        return None
    group = _group(registry, *pending)
    if not groups.enter(key, group):
        wait = groups.wait(key)
        log.debug("job %s waits %.1f s: %d jobs of %s are running", key, wait, groups.limit, group)
        return wait
    try:
        await _claim_and_run(context, registry, key)
    finally:
        groups.leave(group)
    return None


async def _claim_and_run(context: Context, registry: JobRegistry, key: str) -> None:
    row = await _take(context, key)
    if row is None:
        return
    handler = registry.get(row.kind)
    if handler is None:
        await _finish(context, key, JobStatus.FAILED, f"unknown job kind {row.kind!r}")
        return
    try:
        payload = handler.payload.model_validate_json(row.payload)
    except ValidationError as exc:
        await _finish(context, key, JobStatus.FAILED, f"unreadable payload: {exc}")
        return
    try:
        await handler.run(context, payload)
    except JobFailed as exc:
        log.warning("job %s failed: %s", key, exc)
        await _give_up(context, handler, key, payload, str(exc))
        return
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, EXPECTED):
            # A peer, the database or the disk failing: one line, repeats held back.
            context.part(Repeats).log(log, logging.WARNING, f"job {key} failed: {reason}")
        elif not isinstance(exc, RetryLater):
            context.part(Repeats).log(
                log, logging.ERROR, f"job {key} raised: {exc!r}", exc_info=exc
            )
        if row.attempts >= handler.max_attempts:
            log.warning("job %s failed after %d attempts: %s", key, row.attempts, reason)
            await _give_up(context, handler, key, payload, reason)
            return
        await _retry(context, row, reason, exc.defer if isinstance(exc, RetryLater) else None)
        return
    await _finish(context, key, JobStatus.DONE)
    context.metrics.jobs.labels(row.kind, "done").inc()


@dataclass(frozen=True)
class TakenOver:
    """A running job whose owner was gone, set pending again."""

    key: str
    kind: str
    payload: str
    owner: str | None


@dataclass(frozen=True)
class Resumed:
    queued: int
    taken_over: list[TakenOver]


async def resume_jobs(
    context: Context,
    on_takeover: Callable[[AsyncSession, list[TakenOver]], Awaitable[None]] | None = None,
) -> Resumed:
    """Enqueue pending jobs, after taking over the running ones whose owner is gone
    (its lease ran out, or its process ended); a live process's jobs are left alone.
    `on_takeover` records what was taken over in the same transaction."""
    now = utcnow()
    expired = now - lease(context)
    taken: list[TakenOver] = []
    async with context.db.transaction() as session:
        live = await live_owners(context, session)
        running = (
            await session.execute(
                select(Job.key, Job.kind, Job.payload, Job.owner, Job.updated).where(
                    Job.status == JobStatus.RUNNING
                )
            )
        ).all()
        for key, kind, payload, owner, updated in running:
            if updated >= expired and not live.gone(owner, (now - updated).total_seconds()):
                continue
            gone = await session.execute(
                update(Job)
                .where(Job.key == key, Job.status == JobStatus.RUNNING, Job.owner == owner)
                .values(
                    status=JobStatus.PENDING,
                    owner=None,
                    last_error=f"taken over: {owner or 'its runner'} stopped while running it",
                )
            )
            if gone.rowcount == 1:  # type: ignore[attr-defined]
                taken.append(TakenOver(key, kind, payload, owner))
        if taken and on_takeover is not None:
            await on_takeover(session, taken)
        rows = (
            await session.execute(
                select(Job.key, Job.attempts, Job.run_after).where(Job.status == JobStatus.PENDING)
            )
        ).all()
    for item in taken:
        log.warning("took over job %s: %s stopped while running it", item.key, item.owner)
    for key, attempts, run_after in rows:
        defer = max(0.0, (run_after - now).total_seconds())
        await context.queue.enqueue(key, attempt=attempts, defer=defer)
    return Resumed(queued=len(rows), taken_over=taken)


async def touch(context: Context, key: str) -> None:
    """Renew a long job's lease (the process's heartbeat renews it too)."""
    async with context.db.transaction() as session:
        await session.execute(update(Job).where(_mine(context, key)).values(updated=utcnow()))
