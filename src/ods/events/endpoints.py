"""The event log: recent events, and the same events live as server-sent events."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import SQLAlchemyError

from ods.core.auth import still_valid
from ods.core.db import MAX_ROW_ID
from ods.events import kinds
from ods.events import log as event_log
from ods.events.log import EVENT_EXAMPLE, EventFollower, EventList, EventOut
from ods.web.deps import ContextDep, CurrentUser, admin_router
from ods.web.errors import ERROR_RESPONSES

log = logging.getLogger(__name__)

# The stream reads the events table: events may come from other processes
# (`ods worker`), so there is nothing in this process to wait on.
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0
# How often a stream checks that its token still stands (logout, revocation,
# expiry, a deleted user or a changed role end it within this long).
RECHECK_SECONDS = 2.0

router = admin_router("events")

STREAM_EXAMPLE = (
    "id: 42\nevent: package.uploaded\ndata: "
    + EventOut.model_validate(EVENT_EXAMPLE).model_dump_json()
    + "\n\n: keepalive\n\n"
)
# The stream's own media type is text/event-stream; its errors are JSON like any other.
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": response["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for status, response in ERROR_RESPONSES.items()
} | {
    200: {
        "description": "A `text/event-stream` that stays open: one event per new row "
        "of the event log, and a `: keepalive` comment every 15 s.",
        "content": {"text/event-stream": {"schema": {"type": "string"}, "example": STREAM_EXAMPLE}},
    }
}


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


@router.get("/events", operation_id="list_events")
async def list_events(
    context: ContextDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    kind: Annotated[kinds.KindName | None, Query(description="Only events of this kind.")] = None,
) -> EventList:
    """Recent events, newest first."""
    return EventList(items=await event_log.recent_events(context.db, limit, kind))


@router.get("/events/kinds", operation_id="list_event_kinds")
async def list_event_kinds() -> kinds.EventKindList:
    """Every kind of event: what it means, and the fields of its `data`."""
    return kinds.EventKindList(items=kinds.catalogue())


@router.get(
    "/events/stream",
    operation_id="stream_events",
    response_class=EventStreamResponse,
    responses=STREAM_RESPONSES,
)
async def stream_events(
    request: Request,
    context: ContextDep,
    principal: CurrentUser,
    after: Annotated[
        int | None,
        Query(
            ge=0, le=MAX_ROW_ID, description="Send the events after this id (default: only new)."
        ),
    ] = None,
    last_event_id: Annotated[
        int | None,
        Header(
            ge=0, le=MAX_ROW_ID, description="Sent by a reconnecting client; wins over `after`."
        ),
    ] = None,
) -> EventStreamResponse:
    """New events as server-sent events, as they are recorded (by any process).

    Each event is `id: N`, `event: <kind>` and `data: <event JSON>`. A
    reconnecting client sends the last id it saw in `Last-Event-ID` and gets
    everything after it.
    """
    start = last_event_id if last_event_id is not None else after
    if start is None:
        start = await event_log.last_event_id(context.db)
    stopping: threading.Event = request.app.state.stopping
    follower = EventFollower(context.db, start)

    async def allowed() -> bool:
        return await still_valid(context.db, principal)

    return EventStreamResponse(
        _stream(follower, stopping, allowed),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def frame(event: EventOut) -> str:
    """One event in the wire format; `kind` is one line and JSON escapes newlines."""
    kind = event.kind.replace("\r", " ").replace("\n", " ")
    return f"id: {event.id}\nevent: {kind}\ndata: {event.model_dump_json()}\n\n"


async def _stream(
    follower: EventFollower, stopping: threading.Event, allowed: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    """Until the client goes (Starlette cancels this), the server stops, or the token no
    longer stands."""
    yield ": connected\n\n"
    last_sent = last_checked = time.monotonic()
    while not stopping.is_set():
        try:
            if time.monotonic() - last_checked >= RECHECK_SECONDS:
                if not await allowed():
                    yield "event: ods.unauthorized\ndata: {}\n\n"
                    return
                last_checked = time.monotonic()
            events = await follower.poll()
        except (SQLAlchemyError, OSError) as exc:
            # The client reconnects with Last-Event-ID and resumes when the database is back.
            log.warning("event stream: cannot read events: %s", exc)
            return
        for event in events:
            yield frame(event)
        now = time.monotonic()
        if events:
            last_sent = now
        elif now - last_sent >= KEEPALIVE_SECONDS:
            yield ": keepalive\n\n"
            last_sent = now
        if len(events) < follower.batch:
            await asyncio.sleep(POLL_SECONDS)
