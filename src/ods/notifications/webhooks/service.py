"""Webhooks as an admin manages them: create, change, delete, test, redeliver, list deliveries."""

from __future__ import annotations

import json

from sqlalchemy import delete as delete_rows
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.context import Context
from ods.core.db import get_row
from ods.core.errors import InvalidField, NotFound
from ods.core.models import Webhook, WebhookDelivery, utcnow
from ods.events.log import last_event_id
from ods.events.notification_events import Ping
from ods.jobs.kinds import DeliverWebhook
from ods.jobs.runner import submit
from ods.notifications.webhooks import delivery
from ods.notifications.webhooks.records import SECRET_CONTEXT, delivery_out, webhook_out
from ods.notifications.webhooks.schemas import (
    WebhookDeliveryList,
    WebhookDeliveryOut,
    WebhookIn,
    WebhookOut,
    WebhookUpdate,
)
from ods.notifications.webhooks.targets import TargetRefused, resolve


async def check_target(context: Context, url: str) -> None:
    """422 for a url a webhook may not post to (checked again at each delivery)."""
    try:
        await resolve(url, context.settings.webhook_allow)
    except TargetRefused as exc:
        raise InvalidField("url", str(exc)) from None


def _check_signed(fmt: str, has_secret: bool) -> None:
    if fmt == "ods" and not has_secret:
        raise InvalidField("secret", "an ods webhook is signed: give it a secret")


async def create(context: Context, body: WebhookIn) -> WebhookOut:
    _check_signed(body.format, bool(body.secret))
    await check_target(context, body.url)
    newest = await last_event_id(context.db)
    async with context.db.transaction() as session:
        hook = Webhook(
            url=body.url,
            secret_encrypted=(
                context.cipher.encrypt(body.secret, SECRET_CONTEXT) if body.secret else None
            ),
            events=json.dumps(sorted(set(body.events))),
            format=body.format,
            enabled=body.enabled,
            first_event_id=newest,
            last_event_id=newest,
        )
        session.add(hook)
        await session.flush()
        return webhook_out(hook)


async def _get(session: AsyncSession, webhook_id: int) -> Webhook:
    hook = await get_row(session, Webhook, webhook_id)
    if hook is None:
        raise NotFound(f"No webhook has id {webhook_id}.")
    return hook


async def list_webhooks(context: Context) -> list[WebhookOut]:
    async with context.db.session() as session:
        rows = await session.scalars(select(Webhook).order_by(Webhook.id))
        return [webhook_out(hook) for hook in rows]


async def get(context: Context, webhook_id: int) -> WebhookOut:
    async with context.db.session() as session:
        return webhook_out(await _get(session, webhook_id))


async def update(context: Context, webhook_id: int, body: WebhookUpdate) -> WebhookOut:
    await get(context, webhook_id)  # 404 before anything about the body
    if body.url is not None:
        await check_target(context, body.url)
    newest = await last_event_id(context.db)
    async with context.db.transaction() as session:
        hook = await _get(session, webhook_id)
        if body.url is not None:
            hook.url = body.url
        if body.secret is not None:
            hook.secret_encrypted = (
                context.cipher.encrypt(body.secret, SECRET_CONTEXT) if body.secret else None
            )
        if body.events is not None:
            hook.events = json.dumps(sorted(set(body.events)))
        if body.format is not None:
            hook.format = body.format
        _check_signed(hook.format, bool(hook.secret_encrypted))
        if body.enabled is not None:
            if body.enabled and not hook.enabled:
                # Enabled again: it goes on from now, not with what it missed.
                hook.first_event_id = hook.last_event_id = newest
                hook.disabled_reason = None
            hook.enabled = body.enabled
        hook.updated = utcnow()
        return webhook_out(hook)


async def delete(context: Context, webhook_id: int) -> None:
    async with context.db.transaction() as session:
        hook = await _get(session, webhook_id)
        await session.execute(
            delete_rows(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
        )
        await session.delete(hook)


async def deliveries(
    context: Context, webhook_id: int, limit: int, offset: int
) -> WebhookDeliveryList:
    async with context.db.session() as session:
        await _get(session, webhook_id)
        mine = WebhookDelivery.webhook_id == webhook_id
        total = await session.scalar(select(func.count()).select_from(WebhookDelivery).where(mine))
        rows = await session.scalars(
            select(WebhookDelivery)
            .where(mine)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return WebhookDeliveryList(items=[delivery_out(r) for r in rows], total=int(total or 0))


async def test(context: Context, webhook_id: int) -> WebhookDeliveryOut:
    """Send a `webhook.ping` now, once, and answer with its outcome."""
    ping = Ping(webhook_id=webhook_id)
    async with context.db.transaction() as session:
        hook = await _get(session, webhook_id)
        # Made failed and updated with the outcome: the webhook's job only takes pending ones.
        row = WebhookDelivery(
            webhook_id=hook.id,
            kind=ping.kind,
            data=ping.model_dump_json(),
            message=ping.message(),
            status="failed",
            error="being sent",
            attempts=0,
        )
        session.add(row)
        await session.flush()
        session.expunge(hook)
        session.expunge(row)
    outcome = await delivery.attempt(context, hook, row)
    await delivery.record_outcome(context, row.id, outcome, retry=False)
    async with context.db.session() as session:
        found = await session.get(WebhookDelivery, row.id)
        assert found is not None
        return delivery_out(found)


async def redeliver(context: Context, webhook_id: int, delivery_id: int) -> WebhookDeliveryOut:
    """Send a delivery's event again, as a new delivery after the webhook's others."""
    async with context.db.transaction() as session:
        await _get(session, webhook_id)
        old = await get_row(session, WebhookDelivery, delivery_id)
        if old is None or old.webhook_id != webhook_id:
            raise NotFound(f"Webhook {webhook_id} has no delivery {delivery_id}.")
        row = WebhookDelivery(
            webhook_id=webhook_id,
            kind=old.kind,
            data=old.data,
            message=old.message,
            event_created=old.event_created,
            status="pending",
            attempts=0,
        )
        session.add(row)
        await session.flush()
        answer = delivery_out(row)
    await submit(context, DeliverWebhook(webhook_id=webhook_id))
    return answer
