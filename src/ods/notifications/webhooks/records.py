"""How webhooks and deliveries are stored and shown: shared by the service and the jobs."""

from __future__ import annotations

import json

from ods.core.humanize import iso
from ods.core.models import Webhook, WebhookDelivery
from ods.notifications.webhooks.schemas import WebhookDeliveryOut, WebhookOut

# The context the webhook secret is encrypted under, with DATABASE_KEY.
SECRET_CONTEXT = "webhook-secret"  # noqa: S105 - a label, not a secret


def kinds_of(hook: Webhook) -> list[str]:
    kinds: list[str] = json.loads(hook.events or "[]")
    return kinds


def webhook_out(hook: Webhook) -> WebhookOut:
    return WebhookOut(
        id=hook.id,
        url=hook.url,
        events=kinds_of(hook),
        format=hook.format,
        enabled=hook.enabled,
        has_secret=bool(hook.secret_encrypted),
        disabled_reason=hook.disabled_reason,
        created=iso(hook.created),
    )


def delivery_out(row: WebhookDelivery) -> WebhookDeliveryOut:
    return WebhookDeliveryOut(
        id=row.id,
        event=row.kind,
        status=row.status,
        attempts=row.attempts,
        response_status=row.response_status,
        duration_ms=row.duration_ms,
        error=row.error,
        created=iso(row.created),
        next_attempt=iso(row.next_attempt) if row.next_attempt else None,
    )
