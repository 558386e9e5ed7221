"""/api/admin/email-subscriptions: who is mailed about which events, and the mail log."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from ods.notifications.email import deliver, service
from ods.notifications.email.schemas import (
    EmailDeliveryList,
    EmailDeliveryOut,
    SubscriptionCreate,
    SubscriptionList,
    SubscriptionOut,
    SubscriptionUpdate,
)
from ods.web.deps import Admin, ContextDep, admin_router
from ods.web.errors import ErrorBody

router = admin_router("email")
PATH = "/email-subscriptions"
SMTP_UNSET: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "ODS_SMTP_HOST or ODS_SMTP_FROM is unset"}
}


@router.post(PATH, operation_id="create_email_subscription", status_code=201)
async def create_subscription(
    body: SubscriptionCreate, context: ContextDep, _: Admin
) -> SubscriptionOut:
    """Mail an address about events of the given kinds (none given: every kind), from now on."""
    return await service.create(context.db, body)


@router.get(PATH, operation_id="list_email_subscriptions")
async def list_subscriptions(context: ContextDep, _: Admin) -> SubscriptionList:
    """Every email subscription."""
    return await service.list_all(context.db)


@router.get(PATH + "/{subscription_id}", operation_id="get_email_subscription")
async def get_subscription(subscription_id: int, context: ContextDep, _: Admin) -> SubscriptionOut:
    """One email subscription."""
    return await service.get(context.db, subscription_id)


@router.patch(PATH + "/{subscription_id}", operation_id="update_email_subscription")
async def update_subscription(
    subscription_id: int, body: SubscriptionUpdate, context: ContextDep, _: Admin
) -> SubscriptionOut:
    """Change the address, the kinds or the digest interval; fields left out stay."""
    return await service.update(context.db, subscription_id, body)


@router.delete(
    PATH + "/{subscription_id}", operation_id="delete_email_subscription", status_code=204
)
async def delete_subscription(subscription_id: int, context: ContextDep, _: Admin) -> Response:
    """Stop mailing the address; its pending mail and log go too."""
    await service.delete(context.db, subscription_id)
    return Response(status_code=204)


@router.post(
    PATH + "/{subscription_id}/test", operation_id="test_email_subscription", responses=SMTP_UNSET
)
async def send_test_mail(subscription_id: int, context: ContextDep, _: Admin) -> EmailDeliveryOut:
    """Send a test mail now; the answer is its delivery, `delivered` or `failed` with why."""
    await service.get(context.db, subscription_id)
    return await deliver.send_test(context, subscription_id)


@router.get(PATH + "/{subscription_id}/deliveries", operation_id="list_email_deliveries")
async def list_deliveries(subscription_id: int, context: ContextDep, _: Admin) -> EmailDeliveryList:
    """The subscription's mails, newest first (up to 200): status, tries, last error."""
    return await service.deliveries(context.db, subscription_id)
