"""From the event log to `jamf_sync` jobs, behind the integration's cursor.

Every package event (uploaded, replaced, available, stage changed, withdrawn,
restored, deleted, failed…) may change whether a filename should have a
record, so each one after the cursor queues that filename's job; the job
works out what to do from the state, not from the event, so a job queued
twice is harmless. The cursor and the jobs are written in one transaction,
so a restart goes on where it stopped. Like the webhook dispatch, a pass
looks again at the last `RESCAN` ids (an event can become visible after one
with a higher id on MariaDB and PostgreSQL), skipping those it queued. An
event whose filename's job is running is left for a later pass: the job may
have read the state before the event's change.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import select

from ods.core.context import Context
from ods.core.loops import Every
from ods.core.models import Event, JamfSettings, Job
from ods.integrations.jamf.sync import SETTINGS_ID
from ods.jobs.kinds import JamfSync
from ods.jobs.runner import JobStatus, add_job, dispatch

log = logging.getLogger(__name__)

RESCAN = 200
BATCH = 500


def _filename(event: Event) -> str | None:
    try:
        data = json.loads(event.data or "{}")
    except ValueError:
        return None
    name = data.get("filename") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


class JamfDispatcher(Every):
    """Runs a pass every ODS_JAMF_SYNC_SECONDS in `ods serve`."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.queued: set[int] = set()

        async def step() -> None:
            await self.dispatch_round()

        super().__init__(context.settings.jamf_sync_seconds, step, what="Jamf Pro sync", log=log)

    async def dispatch_round(self) -> int:
        """One pass; the number of jobs queued."""
        keys: list[str] = []
        async with self.context.db.session() as session:
            # Read first: on SQLite a write transaction queues behind every other writer.
            enabled = await session.scalar(
                select(JamfSettings.enabled).where(JamfSettings.id == SETTINGS_ID)
            )
        if not enabled:
            return 0
        async with self.context.db.transaction() as session:
            settings = await session.get(JamfSettings, SETTINGS_ID)
            if settings is None or not settings.enabled:
                return 0
            low = max(0, settings.last_event_id - RESCAN)
            events = list(
                await session.scalars(
                    select(Event)
                    .where(Event.id > low, Event.kind.startswith("package."))
                    .order_by(Event.id)
                    .limit(BATCH)
                )
            )
            fresh = [e for e in events if e.id not in self.queued]
            names = {name for name in map(_filename, fresh) if name is not None}
            # A running job has read the state already and is not re-armed by add_job: its
            # filename's events wait for a later pass, when it has finished.
            jobs = {JamfSync(filename=name).key(): name for name in names}
            running = {
                jobs[key]
                for key in await session.scalars(
                    select(Job.key).where(
                        Job.key.in_(list(jobs)), Job.status == JobStatus.RUNNING.value
                    )
                )
            }
            for name in sorted(names - running):
                keys.append(await add_job(session, JamfSync(filename=name)))
            if events:
                settings.last_event_id = max(settings.last_event_id, events[-1].id)
        self.queued.update(e.id for e in fresh if _filename(e) not in running)
        floor = settings.last_event_id - RESCAN
        self.queued = {i for i in self.queued if i > floor}
        await dispatch(self.context.queue, keys)
        return len(keys)
