"""Email subscriptions: create, list, change, delete, and their delivery log."""

from __future__ import annotations

import json
from collections import defaultdict

from sqlalchemy import func, select

from ods.core.db import Database, get_row
from ods.core.errors import NotFound
from ods.core.humanize import iso
from ods.core.models import EmailDelivery, EmailItem, EmailSubscription, Event
from ods.notifications.email.schemas import (
    EmailDeliveryList,
    EmailDeliveryOut,
    SubscriptionCreate,
    SubscriptionList,
    SubscriptionOut,
    SubscriptionUpdate,
)

LOG_LIMIT = 200


def subscription_out(row: EmailSubscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=row.id,
        address=row.address,
        events=json.loads(row.events),
        digest_minutes=row.digest_minutes,
        created=iso(row.created),
    )


def delivery_out(row: EmailDelivery, events: list[int]) -> EmailDeliveryOut:
    return EmailDeliveryOut(
        id=row.id,
        event=row.event,
        status=row.status,
        attempts=row.attempts,
        error=row.error,
        created=iso(row.created),
        next_attempt=iso(row.next_attempt) if row.next_attempt else None,
        events=events,
    )


def not_found(subscription_id: int) -> NotFound:
    return NotFound(f"No email subscription with id {subscription_id}.")


async def create(db: Database, body: SubscriptionCreate) -> SubscriptionOut:
    """A new subscription; it mails about events from now on, not the backlog."""
    async with db.transaction() as session:
        newest = await session.scalar(select(func.max(Event.id)))
        row = EmailSubscription(
            address=body.address,
            events=json.dumps(sorted(set(body.events))),
            digest_minutes=body.digest_minutes,
            last_event_id=newest or 0,
        )
        session.add(row)
        await session.flush()
        return subscription_out(row)


async def list_all(db: Database) -> SubscriptionList:
    async with db.session() as session:
        rows = (await session.scalars(select(EmailSubscription).order_by("id"))).all()
    return SubscriptionList(items=[subscription_out(row) for row in rows], total=len(rows))


async def get(db: Database, subscription_id: int) -> SubscriptionOut:
    async with db.session() as session:
        row = await get_row(session, EmailSubscription, subscription_id)
        if row is None:
            raise not_found(subscription_id)
        return subscription_out(row)


async def update(db: Database, subscription_id: int, body: SubscriptionUpdate) -> SubscriptionOut:
    async with db.transaction() as session:
        row = await get_row(session, EmailSubscription, subscription_id)
        if row is None:
            raise not_found(subscription_id)
        if body.address is not None:
            row.address = body.address
        if body.events is not None:
            row.events = json.dumps(sorted(set(body.events)))
        if body.digest_minutes is not None:
            row.digest_minutes = body.digest_minutes
        return subscription_out(row)


async def delete(db: Database, subscription_id: int) -> None:
    """The subscription goes, and with it its pending events and delivery log."""
    async with db.transaction() as session:
        row = await get_row(session, EmailSubscription, subscription_id)
        if row is None:
            raise not_found(subscription_id)
        # Children first: not every backend's foreign keys cascade by themselves.
        for model in (EmailItem, EmailDelivery):
            for child in await session.scalars(
                select(model).where(model.subscription_id == subscription_id)
            ):
                await session.delete(child)
            await session.flush()
        await session.delete(row)


async def deliveries(db: Database, subscription_id: int) -> EmailDeliveryList:
    """The newest deliveries of a subscription, newest first, with the events each holds."""
    async with db.session() as session:
        if await get_row(session, EmailSubscription, subscription_id) is None:
            raise not_found(subscription_id)
        total = await session.scalar(
            select(func.count())
            .select_from(EmailDelivery)
            .where(EmailDelivery.subscription_id == subscription_id)
        )
        rows = (
            await session.scalars(
                select(EmailDelivery)
                .where(EmailDelivery.subscription_id == subscription_id)
                .order_by(EmailDelivery.id.desc())
                .limit(LOG_LIMIT)
            )
        ).all()
        held: dict[int, list[int]] = defaultdict(list)
        if rows:
            items = await session.execute(
                select(EmailItem.delivery_id, EmailItem.event_id)
                .where(EmailItem.delivery_id.in_([row.id for row in rows]))
                .order_by(EmailItem.event_id)
            )
            for delivery_id, event_id in items:
                if delivery_id is not None:
                    held[delivery_id].append(event_id)
    return EmailDeliveryList(
        items=[delivery_out(row, held[row.id]) for row in rows], total=total or 0
    )
