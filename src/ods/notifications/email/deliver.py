"""From the event log to the inbox: gather due events, make deliveries, send them, retry.

Every step is rows in the database, so a restart (even a kill -9) loses nothing:
- `dispatch` turns events after each subscription's cursor into `email_items` (unique
  per subscription and event, so processes dispatching at once agree) and advances the
  cursor; it looks again at a window behind the cursor for events whose ids became
  visible late (see `EventFollower`).
- `gather` makes one delivery per item (`digest_minutes` 0) or one per subscription
  for every item older than its interval (a digest).
- `send_due` claims due deliveries with a conditional update (a claim lapses after a
  lease, so a dead process's mail is sent by another) and sends each; a failure is
  retried with exponential back-off and jitter until 24 hours after it was made.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import defaultdict
from email.message import EmailMessage

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from ods.core.context import Context
from ods.core.models import EmailDelivery, EmailItem, EmailSubscription, Event, utcnow
from ods.core.uuids import public_uuid_or_none
from ods.notifications.email.compose import MailEvent, compose
from ods.notifications.email.schemas import EmailDeliveryOut
from ods.notifications.email.send import SendFailed, SmtpConfig, send
from ods.notifications.email.service import delivery_out
from ods.notifications.retry import RETRY_FOR, retry_delay
from ods.server.identity import get_identity

log = logging.getLogger(__name__)

RESCAN_EVENTS = 200
BATCH = 500
CLAIM_LEASE = dt.timedelta(minutes=2)


def matches(kinds: list[str], kind: str) -> bool:
    return not kinds or kind in kinds


async def dispatch(context: Context) -> None:
    """New events of each subscription's kinds into its email_items."""
    async with context.db.session() as session:
        subscriptions = (await session.scalars(select(EmailSubscription))).all()
    for subscription in subscriptions:
        async with context.db.transaction() as session:
            rows = (
                await session.execute(
                    select(Event.id, Event.kind, Event.created)
                    .where(
                        Event.id > max(0, subscription.last_event_id - RESCAN_EVENTS),
                        Event.created >= subscription.created,
                    )
                    .order_by(Event.id)
                    .limit(BATCH + RESCAN_EVENTS)
                )
            ).all()
            if not rows:
                continue
            kinds = json.loads(subscription.events)
            have = set(
                await session.scalars(
                    select(EmailItem.event_id).where(
                        EmailItem.subscription_id == subscription.id,
                        EmailItem.event_id.in_([row.id for row in rows]),
                    )
                )
            )
            for event_id, kind, _ in rows:
                if event_id not in have and matches(kinds, kind) and kind != "ping":
                    session.add(EmailItem(subscription_id=subscription.id, event_id=event_id))
            newest = max(subscription.last_event_id, rows[-1].id)
            await session.execute(
                update(EmailSubscription)
                .where(EmailSubscription.id == subscription.id)
                .values(last_event_id=newest)
            )
            try:
                await session.flush()
            except IntegrityError:
                # Another process added the same items first; the next tick carries on.
                await session.rollback()
                continue


async def gather(context: Context) -> None:
    """Items not yet in a delivery, into deliveries: one each, or one digest per interval."""
    now = utcnow()
    async with context.db.session() as session:
        subscriptions = {row.id: row for row in await session.scalars(select(EmailSubscription))}
        waiting = (
            await session.execute(
                select(EmailItem.id, EmailItem.subscription_id, Event.kind, EmailItem.created)
                .join(Event, Event.id == EmailItem.event_id)
                .where(EmailItem.delivery_id.is_(None))
                .order_by(EmailItem.event_id)
            )
        ).all()
    groups: dict[int, list[tuple[int, str, dt.datetime]]] = defaultdict(list)
    for item_id, subscription_id, kind, created in waiting:
        groups[subscription_id].append((item_id, kind, created))
    for subscription_id, items in groups.items():
        subscription = subscriptions.get(subscription_id)
        if subscription is None:
            continue
        if subscription.digest_minutes == 0:
            batches = [[item] for item in items]
        else:
            first = min(created for _, _, created in items)
            if now - first < dt.timedelta(minutes=subscription.digest_minutes):
                continue
            batches = [items]
        for batch in batches:
            await _make_delivery(context, subscription_id, batch)


async def _make_delivery(
    context: Context, subscription_id: int, batch: list[tuple[int, str, dt.datetime]]
) -> None:
    kinds = {kind for _, kind, _ in batch}
    name = next(iter(kinds)) if len(batch) == 1 else "digest"
    async with context.db.transaction() as session:
        delivery = EmailDelivery(
            subscription_id=subscription_id,
            event=name,
            status="pending",
            attempts=0,
            next_attempt=utcnow(),
        )
        session.add(delivery)
        await session.flush()
        ids = [item_id for item_id, _, _ in batch]
        claimed = await session.execute(
            update(EmailItem)
            .where(EmailItem.id.in_(ids), EmailItem.delivery_id.is_(None))
            .values(delivery_id=delivery.id)
        )
        if claimed.rowcount != len(ids):  # type: ignore[attr-defined]
            # Another process gathered (some of) them first.
            await session.rollback()


async def mail_for(context: Context, delivery: EmailDelivery, address: str) -> EmailMessage:
    config = SmtpConfig.from_settings(context.settings)
    me = await get_identity(context.db, context.cipher)
    async with context.db.session() as session:
        rows = (
            await session.scalars(
                select(Event)
                .join(EmailItem, EmailItem.event_id == Event.id)
                .where(EmailItem.delivery_id == delivery.id)
                .order_by(Event.id)
            )
        ).all()
    events = [
        MailEvent(
            kind=row.kind,
            created=row.created,
            message=row.message,
            data={**json.loads(row.data or "{}"), "uuid": public_uuid_or_none(row.package_uuid)},
        )
        for row in rows
    ] or [
        MailEvent(
            kind="ping",
            created=delivery.created,
            message=f"A test mail from {me.name}: email notifications reach {address}.",
        )
    ]
    # A server not named yet is "ODS"; one without its url set links to where it listens.
    settings = context.settings
    console = (me.url or f"http://{settings.host}:{settings.port}").rstrip("/") + "/"
    return compose(
        sender=config.sender,
        to=address,
        server=me.name or "ODS",
        console_url=console,
        events=events,
    )


async def attempt(context: Context, delivery_id: int) -> EmailDelivery:
    """Send one claimed delivery now and record the outcome."""
    async with context.db.session() as session:
        delivery = await session.get(EmailDelivery, delivery_id)
        subscription = await session.get(EmailSubscription, delivery.subscription_id)  # type: ignore[union-attr]
    assert delivery is not None
    error: str | None = None
    if subscription is None:
        return delivery
    try:
        config = SmtpConfig.from_settings(context.settings)
        await send(config, await mail_for(context, delivery, subscription.address))
    except SendFailed as exc:
        error = str(exc)
    except Exception as exc:  # the settings or the mail itself; recorded, retried
        error = f"{type(exc).__name__}: {exc}"
    now = utcnow()
    attempts = delivery.attempts + 1
    if error is None:
        values: dict[str, object] = {"status": "delivered", "error": None, "next_attempt": None}
    elif delivery.event == "ping" or now - delivery.created >= RETRY_FOR:
        values = {"status": "failed", "error": error, "next_attempt": None}
    else:
        later = now + dt.timedelta(
            seconds=retry_delay(context.settings.smtp_retry_seconds, attempts)
        )
        values = {"status": "pending", "error": error, "next_attempt": later}
        log.warning("mail to %s not sent (try %d): %s", subscription.address, attempts, error)
    async with context.db.transaction() as session:
        await session.execute(
            update(EmailDelivery)
            .where(EmailDelivery.id == delivery_id)
            .values(attempts=attempts, owner=None, claimed=None, **values)
        )
        row = await session.get(EmailDelivery, delivery_id)
        assert row is not None
        await session.refresh(row)
        return row


async def send_due(context: Context) -> None:
    """Claim and send every delivery whose time has come."""
    now = utcnow()
    async with context.db.session() as session:
        due = list(
            await session.scalars(
                select(EmailDelivery.id)
                .where(EmailDelivery.status == "pending", EmailDelivery.next_attempt <= now)
                .order_by(EmailDelivery.id)
                .limit(BATCH)
            )
        )
    for delivery_id in due:
        if await claim(context, delivery_id):
            await attempt(context, delivery_id)


async def claim(context: Context, delivery_id: int) -> bool:
    now = utcnow()
    async with context.db.transaction() as session:
        result = await session.execute(
            update(EmailDelivery)
            .where(
                EmailDelivery.id == delivery_id,
                EmailDelivery.status == "pending",
                or_(EmailDelivery.owner.is_(None), EmailDelivery.claimed < now - CLAIM_LEASE),
            )
            .values(owner=context.owner.id, claimed=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


async def send_test(context: Context, subscription_id: int) -> EmailDeliveryOut:
    """A test mail to the subscription, sent at once; the answer is its outcome."""
    SmtpConfig.from_settings(context.settings)  # 503 naming what is missing
    async with context.db.transaction() as session:
        delivery = EmailDelivery(
            subscription_id=subscription_id,
            event="ping",
            status="pending",
            attempts=0,
            next_attempt=None,
            owner=context.owner.id,
            claimed=utcnow(),
        )
        session.add(delivery)
        await session.flush()
        delivery_id = delivery.id
    row = await attempt(context, delivery_id)
    return delivery_out(row, [])


async def tick(context: Context) -> None:
    """One round: new events in, deliveries made, due mail sent."""
    await dispatch(context)
    await gather(context)
    await send_due(context)
