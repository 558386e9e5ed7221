"""Delivering: one job per webhook posts its pending deliveries in order, with back-off.

2xx is delivered. 410 Gone disables the webhook (with a `webhook.disabled`
event). Anything else (another status, no answer, a refused target) is tried
again after an exponential back-off with jitter, for up to 24 hours after the
delivery was made; then it is failed. A later delivery of the same webhook
waits while an earlier one is pending, so a receiver sees events in order.
The rows are the truth: a process killed mid-way leaves them pending, and the
next dispatch pass (`dispatch.kick`) starts the job again.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from ods.core.context import Context
from ods.core.humanize import iso
from ods.core.models import Webhook, WebhookDelivery, utcnow
from ods.events.log import record
from ods.events.notification_events import WebhookDisabled
from ods.jobs.kinds import DeliverWebhook
from ods.jobs.runner import RetryLater, touch
from ods.notifications.retry import RETRY_FOR, retry_delay
from ods.notifications.webhooks.formats import Outgoing, ServerInfo, render
from ods.notifications.webhooks.records import SECRET_CONTEXT
from ods.notifications.webhooks.sender import Limits, Outcome, send
from ods.server.identity import get_identity


async def server_info(context: Context) -> ServerInfo:
    me = await get_identity(context.db, context.cipher)
    return ServerInfo(iss=me.iss, name=me.name, url=me.url)


def outgoing(row: WebhookDelivery) -> Outgoing:
    return Outgoing(
        delivery_id=row.id,
        kind=row.kind,
        created=iso(row.event_created),
        message=row.message,
        data=json.loads(row.data),
    )


async def attempt(context: Context, hook: Webhook, row: WebhookDelivery) -> Outcome:
    """Post one delivery once."""
    secret = (
        context.cipher.decrypt(hook.secret_encrypted, SECRET_CONTEXT)
        if hook.secret_encrypted
        else None
    )
    body, headers = render(hook.format, outgoing(row), await server_info(context), secret)
    settings = context.settings
    limits = Limits(settings.webhook_allow, settings.webhook_timeout, context.ssl_context)
    return await send(hook.url, body, headers, limits)


async def record_outcome(
    context: Context, delivery_id: int, outcome: Outcome, *, retry: bool = True
) -> float | None:
    """Store an attempt's outcome; the seconds until the next try while it stays pending."""
    now = utcnow()
    async with context.db.transaction() as session:
        row = await session.get(WebhookDelivery, delivery_id)
        if row is None:
            return None
        hook = await session.get(Webhook, row.webhook_id)
        row.attempts += 1
        row.response_status = outcome.status
        row.duration_ms = outcome.duration_ms
        row.error = outcome.error
        row.next_attempt = None
        if outcome.delivered:
            row.status = "delivered"
            return None
        if outcome.gone and hook is not None:
            row.status = "failed"
            reason = "the receiver answered 410 Gone"
            if hook.enabled:
                hook.enabled = False
                hook.disabled_reason = reason
                event = WebhookDisabled(webhook_id=hook.id, url=hook.url, reason=reason)
                await record(session, event)
            return None
        if not retry or now - row.created >= RETRY_FOR:
            row.status = "failed"
            return None
        delay = retry_delay(context.settings.webhook_retry_seconds, row.attempts)
        row.status = "pending"
        row.next_attempt = now + dt.timedelta(seconds=delay)
        return delay


async def _next(context: Context, webhook_id: int) -> tuple[Webhook, WebhookDelivery] | None:
    async with context.db.session() as session:
        hook = await session.get(Webhook, webhook_id)
        if hook is None or not hook.enabled:
            return None
        row = await session.scalar(
            select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.status == "pending")
            .order_by(WebhookDelivery.id)
            .limit(1)
        )
        return None if row is None else (hook, row)


async def deliver_job(context: Context, payload: DeliverWebhook) -> None:
    """Post the webhook's pending deliveries, oldest first, until none is due."""
    while (found := await _next(context, payload.webhook_id)) is not None:
        hook, row = found
        now = utcnow()
        if row.next_attempt is not None and row.next_attempt > now:
            wait = (row.next_attempt - now).total_seconds()
            raise RetryLater(f"delivery {row.id} waits for its next try", defer=wait)
        outcome = await attempt(context, hook, row)
        wait_for = await record_outcome(context, row.id, outcome)
        if wait_for is not None:
            raise RetryLater(f"delivery {row.id}: {outcome.error}", defer=wait_for)
        await touch(context, payload.key())
