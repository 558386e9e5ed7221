"""The event log: what happened, recorded in the same transaction as the change."""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.db import Database
from ods.core.humanize import iso, timestamp
from ods.core.models import Event
from ods.core.stages import Stage
from ods.core.statuses import Status
from ods.core.uuids import public_uuid, public_uuid_or_none
from ods.events.base import EventData
from ods.events.catalogue import PackageUploaded

# A real catalogue event, so the API's example stays true to the catalogue.
EXAMPLE_UPLOAD = PackageUploaded(
    uuid="28f7c0aa8f1e4c1e9a572b1d5e9f7c11",
    filename="NoMAD.pkg",
    stage=Stage.PROD,
    status=Status.PUBLISHING,
    file_size=3438044,
    sha1="3fab8a2c4d1e5f60718293a4b5c6d7e8f9012345",
    sha256="9b1c0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d",
)

EVENT_EXAMPLE: dict[str, Any] = {
    "id": 42,
    "created": "2026-11-22T09:00:00",
    "created_ts": 1795338000,
    "kind": EXAMPLE_UPLOAD.kind,
    "message": EXAMPLE_UPLOAD.message(),
    "actor": "admin",
    "package_uuid": EXAMPLE_UPLOAD.package_uuid,
    "data": EXAMPLE_UPLOAD.model_dump(mode="json"),
}


class EventOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EVENT_EXAMPLE]})

    id: int
    created: str
    created_ts: int
    kind: str
    message: str
    actor: str | None
    package_uuid: str | None
    data: dict[str, Any] = Field(
        description="The kind's data (GET /api/admin/events/kinds lists its fields); "
        "empty for events recorded before ODS kept data."
    )


class EventList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [EVENT_EXAMPLE]}]})

    items: list[EventOut]


async def record(session: AsyncSession, event: EventData, *, actor: str | None = None) -> None:
    """Add `event` to the log in the caller's transaction: it is kept if the change commits."""
    session.add(
        Event(
            kind=event.kind,
            message=event.message(),
            data=event.model_dump_json(),
            actor=actor,
            package_uuid=event.package_uuid,
        )
    )


def _public_uuids(data: dict[str, Any]) -> dict[str, Any]:
    # Events recorded before the admin API spelt uuids as hex hold the dashed form.
    return {
        name: public_uuid(value) if name.endswith("uuid") and isinstance(value, str) else value
        for name, value in data.items()
    }


def event_out(row: Event) -> EventOut:
    return EventOut(
        id=row.id,
        created=iso(row.created),
        created_ts=timestamp(row.created),
        kind=row.kind,
        message=row.message,
        actor=row.actor,
        package_uuid=public_uuid_or_none(row.package_uuid),
        data=_public_uuids(json.loads(row.data)) if row.data else {},
    )


async def recent_events(db: Database, limit: int, kind: str | None = None) -> list[EventOut]:
    query = select(Event).order_by(Event.id.desc()).limit(limit)
    if kind:
        query = query.where(Event.kind == kind)
    async with db.session() as session:
        return [event_out(row) for row in (await session.execute(query)).scalars()]


async def events_after(db: Database, after: int, limit: int) -> list[EventOut]:
    """Events newer than id `after`, oldest first: what a live follower has not seen."""
    query = select(Event).where(Event.id > after).order_by(Event.id).limit(limit)
    async with db.session() as session:
        return [event_out(row) for row in (await session.execute(query)).scalars()]


async def last_event_id(db: Database) -> int:
    """The newest event's id, 0 when there is none."""
    async with db.session() as session:
        found = await session.scalar(select(func.max(Event.id)))
    return int(found or 0)


class EventFollower:
    """Follows the event log in id order from an id, for the live stream.

    Ids are taken when a row is inserted, not when it commits, so on MariaDB or
    PostgreSQL an event can become visible after one with a higher id. The
    follower sends what it finds, remembers what it sent, and waits up to
    `gap_wait` seconds for a missing id to appear before it moves past it (a
    rolled-back transaction leaves a gap for ever).
    """

    def __init__(self, db: Database, after: int, *, batch: int = 100, gap_wait: float = 5.0):
        self.db = db
        self.after = after
        self.batch = batch
        self.gap_wait = gap_wait
        self._sent: set[int] = set()
        self._gap_since: float | None = None

    async def poll(self) -> list[EventOut]:
        """The events not sent yet, oldest first (at most `batch`)."""
        found = await events_after(self.db, self.after, self.batch)
        new = [event for event in found if event.id not in self._sent]
        self._sent.update(event.id for event in new)
        self._advance()
        return new

    def _advance(self) -> None:
        while self.after + 1 in self._sent:
            self.after += 1
            self._sent.discard(self.after)
        if not self._sent:
            self._gap_since = None
            return
        now = time.monotonic()
        if self._gap_since is None:
            self._gap_since = now
        elif now - self._gap_since >= self.gap_wait:
            self.after = min(self._sent) - 1
            self._gap_since = None
            self._advance()
