"""Who owns work in flight, and for how long: each process's row and lease.

Every `ods serve` and `ods worker` registers itself in `processes` at start
and renews its lease every third of ODS_WORK_LEASE, together with the lease
of every job it is running (`jobs.updated`). A process that stops cleanly
hands its running jobs back and removes its row. A process is gone when its
row is missing, its lease ran out, or it ran on this machine and its pid no
longer exists (a `kill -9` is seen at once). Only the work of a process
that is gone is taken over: jobs by `runner.resume_jobs`, uploads and
publishes by `packages.service.recover`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.loops import STOP_GRACE_SECONDS
from ods.core.models import Job, Process, utcnow
from ods.core.platform import pid_exists
from ods.jobs.status import JobStatus

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)

# A process row this many leases old is forgotten: its work was taken over long ago.
FORGET_AFTER_LEASES = 20


def lease(context: Context) -> dt.timedelta:
    return dt.timedelta(seconds=context.settings.work_lease)


@dataclass(frozen=True)
class LiveOwners:
    """The processes whose work must be left alone, and every process still on record."""

    ids: frozenset[str]
    known: frozenset[str]
    lease_seconds: float

    def __contains__(self, owner: object) -> bool:
        return owner in self.ids

    def gone(self, owner: str | None, idle_seconds: float) -> bool:
        """Whether work of `owner`, untouched for `idle_seconds`, is abandoned.

        Work without an owner predates owners: it is abandoned. An owner
        not on record registered after this was read, or was forgotten long
        ago: its work is abandoned once it has been idle for a lease.
        """
        if owner is None or owner in self.known:
            return owner not in self.ids
        return idle_seconds > self.lease_seconds


async def live_owners(context: Context, session: AsyncSession) -> LiveOwners:
    """The processes holding a lease now; this one always is."""
    since = utcnow() - lease(context)
    rows = (
        await session.execute(select(Process.id, Process.machine, Process.pid, Process.seen))
    ).all()
    me = context.owner
    live = {me.id}
    for id_, machine, pid, seen in rows:
        if seen < since:
            continue
        if machine == me.machine and not pid_exists(pid):
            continue
        live.add(id_)
    known = frozenset(row[0] for row in rows) | {me.id}
    return LiveOwners(frozenset(live), known, context.settings.work_lease)


async def renew(context: Context, role: str) -> None:
    """Renew this process's lease and the leases of the jobs it runs."""
    me, now = context.owner, utcnow()
    async with context.db.transaction() as session:
        found = await session.execute(update(Process).where(Process.id == me.id).values(seen=now))
        if found.rowcount == 0:  # type: ignore[attr-defined]
            # Forgotten while the database was out of reach: register again.
            session.add(Process(id=me.id, machine=me.machine, pid=me.pid, role=role, seen=now))
        await session.execute(
            update(Job)
            .where(Job.owner == me.id, Job.status == JobStatus.RUNNING)
            .values(updated=now)
        )
        forget = now - lease(context) * FORGET_AFTER_LEASES
        await session.execute(delete(Process).where(Process.seen < forget))


async def release(context: Context) -> None:
    """A clean stop: hand this process's running jobs back and remove its row."""
    me = context.owner
    async with context.db.transaction() as session:
        await session.execute(
            update(Job)
            .where(Job.owner == me.id, Job.status == JobStatus.RUNNING)
            .values(status=JobStatus.PENDING, owner=None)
        )
        await session.execute(delete(Process).where(Process.id == me.id))


class Heartbeat:
    """Registers this process and renews its lease until it stops."""

    def __init__(self, context: Context, role: str) -> None:
        self.context = context
        self.role = role
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        me = self.context.owner
        async with self.context.db.transaction() as session:
            session.add(Process(id=me.id, machine=me.machine, pid=me.pid, role=self.role))
        self._task = asyncio.create_task(self._run(), name="ods lease")
        self.context.closing.append(self.stop)
        log.info("running as %s", me.id)

    async def _run(self) -> None:
        every = self.context.settings.work_lease / 3
        failing = False
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), every)
            if self._stopping.is_set():
                return
            try:
                await renew(self.context, self.role)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Said once until it works again: the database may be down for a while.
                if not failing:
                    log.warning("could not renew this process's lease: %s", exc)
                failing = True
            else:
                if failing:
                    log.info("renewed this process's lease again")
                failing = False

    async def stop(self) -> None:
        """Lets a renewal under way finish (a write cancelled half-way can keep SQLite
        locked), then hands the work back."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            _, pending = await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
            if pending:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        try:
            await release(self.context)
        except Exception as exc:
            log.warning("could not hand back this process's work: %s", exc)
