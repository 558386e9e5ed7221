"""From the event log to deliveries: the outbox read behind each webhook's cursor.

Each pass reads the events after each enabled webhook's cursor, makes one
delivery per matching event, queues the webhook's job and moves the cursor,
in one transaction. It looks again at the last `RESCAN` ids behind the
cursor: on MariaDB and PostgreSQL an event can become visible after one with
a higher id, and it is not to be lost. The unique (webhook, event) pair makes
a second pass, or a second process, harmless. A pass also starts the job of
a webhook whose deliveries wait with no job queued (after a kill -9, say).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.context import Context
from ods.core.loops import Every
from ods.core.models import Event, Job, Webhook, WebhookDelivery, utcnow
from ods.events.log import event_out
from ods.jobs.kinds import DeliverWebhook
from ods.jobs.runner import JobStatus, add_job, dispatch
from ods.notifications.webhooks.records import kinds_of

log = logging.getLogger(__name__)

RESCAN = 200
BATCH = 500
TICK_SECONDS = 1.0


def _insert_ignoring_duplicates(session: AsyncSession, rows: list[dict[str, Any]]) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect in ("mysql", "mariadb"):
        return mysql.insert(WebhookDelivery).values(rows).prefix_with("IGNORE")
    if dialect == "postgresql":
        return postgresql.insert(WebhookDelivery).values(rows).on_conflict_do_nothing()
    return sqlite.insert(WebhookDelivery).values(rows).on_conflict_do_nothing()


def _row(hook: Webhook, event: Event) -> dict[str, Any]:
    return {
        "webhook_id": hook.id,
        "event_id": event.id,
        "kind": event.kind,
        "data": json.dumps(event_out(event).data),
        "message": event.message,
        "event_created": event.created,
        "status": "pending",
        "attempts": 0,
        "created": utcnow(),
    }


async def _make_deliveries(session: AsyncSession, hook: Webhook, events: list[Event]) -> bool:
    """Deliveries for the events after the hook's rescan start; whether any is new."""
    start = max(hook.first_event_id, hook.last_event_id - RESCAN)
    kinds = set(kinds_of(hook))
    wanted = [e for e in events if e.id > start and (not kinds or e.kind in kinds)]
    if wanted:
        have = set(
            await session.scalars(
                select(WebhookDelivery.event_id).where(
                    WebhookDelivery.webhook_id == hook.id,
                    WebhookDelivery.event_id.in_([e.id for e in wanted]),
                )
            )
        )
        wanted = [e for e in wanted if e.id not in have]
    if events:
        hook.last_event_id = max(hook.last_event_id, max(e.id for e in events))
    if not wanted:
        return False
    await session.execute(_insert_ignoring_duplicates(session, [_row(hook, e) for e in wanted]))
    return True


async def make_deliveries(context: Context) -> int:
    """One pass over the event log; the number of webhooks with new deliveries."""
    keys: list[str] = []
    async with context.db.session() as session:
        # Read first: on SQLite a write transaction queues behind every other writer.
        anyone = await session.scalar(select(Webhook.id).where(Webhook.enabled.is_(True)).limit(1))
    if anyone is None:
        return 0
    async with context.db.transaction() as session:
        hooks = list(await session.scalars(select(Webhook).where(Webhook.enabled.is_(True))))
        if not hooks:
            return 0
        low = min(max(h.first_event_id, h.last_event_id - RESCAN) for h in hooks)
        events = list(
            await session.scalars(
                select(Event).where(Event.id > low).order_by(Event.id).limit(BATCH)
            )
        )
        for hook in hooks:
            if await _make_deliveries(session, hook, events):
                keys.append(await add_job(session, DeliverWebhook(webhook_id=hook.id)))
    await dispatch(context.queue, keys)
    return len(keys)


async def kick(context: Context) -> None:
    """Queue the job of each enabled webhook with pending deliveries and no job under way."""
    async with context.db.session() as session:
        waiting = set(
            await session.scalars(
                select(WebhookDelivery.webhook_id)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(WebhookDelivery.status == "pending", Webhook.enabled.is_(True))
                .distinct()
            )
        )
        if not waiting:
            return
        keys = {DeliverWebhook(webhook_id=hook_id).key(): hook_id for hook_id in waiting}
        busy = set(
            await session.scalars(
                select(Job.key).where(
                    Job.key.in_(list(keys)),
                    Job.status.in_((JobStatus.PENDING, JobStatus.RUNNING)),
                )
            )
        )
    idle = [hook_id for key, hook_id in keys.items() if key not in busy]
    if not idle:
        return
    async with context.db.transaction() as session:
        added = [await add_job(session, DeliverWebhook(webhook_id=h)) for h in idle]
    await dispatch(context.queue, added)


async def dispatch_round(context: Context) -> None:
    await make_deliveries(context)
    await kick(context)


class Dispatcher(Every):
    """Runs a pass every second in `ods serve`, beside the mesh's scheduler."""

    def __init__(self, context: Context) -> None:
        super().__init__(
            TICK_SECONDS, lambda: dispatch_round(context), what="webhook dispatch", log=log
        )
