"""The event log: what happened, recorded in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ods.db import Database
from ods.humanize import iso, timestamp
from ods.models import Event

EVENT_EXAMPLE: dict[str, Any] = {
    "id": 42,
    "created": "2026-11-22T09:00:00",
    "created_ts": 1795338000,
    "kind": "package.uploaded",
    "message": "NoMAD.pkg uploaded (Prod)",
    "actor": "admin",
    "package_uuid": "28f7c0aa-8f1e-4c1e-9a57-2b1d5e9f7c11",
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


class EventList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [EVENT_EXAMPLE]}]})

    items: list[EventOut]


async def record_event(
    session: AsyncSession,
    kind: str,
    message: str,
    *,
    actor: str | None = None,
    package_uuid: str | None = None,
) -> None:
    session.add(Event(kind=kind, message=message, actor=actor, package_uuid=package_uuid))


async def recent_events(db: Database, limit: int, kind: str | None = None) -> list[EventOut]:
    query = select(Event).order_by(Event.id.desc()).limit(limit)
    if kind:
        query = query.where(Event.kind == kind)
    async with db.session() as session:
        rows = (await session.execute(query)).scalars()
        return [
            EventOut(
                id=row.id,
                created=iso(row.created),
                created_ts=timestamp(row.created),
                kind=row.kind,
                message=row.message,
                actor=row.actor,
                package_uuid=row.package_uuid,
            )
            for row in rows
        ]
