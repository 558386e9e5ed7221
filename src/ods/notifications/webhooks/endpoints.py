"""Webhooks in the admin API: admins only; the work is in `service`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from ods.core.db import MAX_ROW_ID
from ods.notifications.webhooks import service
from ods.notifications.webhooks.schemas import (
    WebhookDeliveryList,
    WebhookDeliveryOut,
    WebhookIn,
    WebhookList,
    WebhookOut,
    WebhookUpdate,
)
from ods.web.deps import ContextDep, admin
from ods.web.errors import ERROR_RESPONSES, ErrorBody

router = APIRouter(
    prefix="/api/admin/webhooks",
    tags=["notifications"],
    dependencies=[Depends(admin)],
    responses=ERROR_RESPONSES,
)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such webhook"}
}


@router.get("", operation_id="list_webhooks")
async def list_webhooks(context: ContextDep) -> WebhookList:
    """Every webhook."""
    return WebhookList(items=await service.list_webhooks(context))


@router.post("", operation_id="create_webhook", status_code=201)
async def create_webhook(body: WebhookIn, context: ContextDep) -> WebhookOut:
    """Add a webhook. It gets the events recorded from now on that it asks for.

    The url is refused (422) if it resolves to a loopback, link-local or this
    server's own address, unless ODS_WEBHOOK_ALLOW allows it."""
    return await service.create(context, body)


@router.get("/{webhook_id}", operation_id="get_webhook", responses=NOT_FOUND)
async def get_webhook(webhook_id: int, context: ContextDep) -> WebhookOut:
    """One webhook."""
    return await service.get(context, webhook_id)


@router.patch("/{webhook_id}", operation_id="update_webhook", responses=NOT_FOUND)
async def update_webhook(webhook_id: int, body: WebhookUpdate, context: ContextDep) -> WebhookOut:
    """Change a webhook; enabling it again goes on from now, not with what it missed."""
    return await service.update(context, webhook_id, body)


@router.delete("/{webhook_id}", operation_id="delete_webhook", status_code=204, responses=NOT_FOUND)
async def delete_webhook(webhook_id: int, context: ContextDep) -> Response:
    """Delete a webhook and its deliveries."""
    await service.delete(context, webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/test", operation_id="test_webhook", responses=NOT_FOUND)
async def test_webhook(webhook_id: int, context: ContextDep) -> WebhookDeliveryOut:
    """Send a `webhook.ping` now and answer with the delivery's outcome (tried once)."""
    return await service.test(context, webhook_id)


@router.get("/{webhook_id}/deliveries", operation_id="list_webhook_deliveries", responses=NOT_FOUND)
async def list_deliveries(
    webhook_id: int,
    context: ContextDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
) -> WebhookDeliveryList:
    """The webhook's deliveries, newest first, and how many there are."""
    return await service.deliveries(context, webhook_id, limit, offset)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    operation_id="redeliver_webhook_delivery",
    status_code=202,
    responses={404: {"model": ErrorBody, "description": "No such webhook or delivery"}},
)
async def redeliver(webhook_id: int, delivery_id: int, context: ContextDep) -> WebhookDeliveryOut:
    """Send a delivery's event again, as a new delivery queued after the webhook's others."""
    return await service.redeliver(context, webhook_id, delivery_id)
