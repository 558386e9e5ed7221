"""Events of notifications: a webhook's test ping, a webhook the server disabled."""

from __future__ import annotations

from pydantic import Field

from ods.events.base import EventData


class Ping(EventData):
    kind = "webhook.ping"
    description = (
        "A test delivery asked for with POST /api/admin/webhooks/{id}/test; "
        "sent to that webhook only, never recorded in the event log."
    )

    webhook_id: int = Field(description="The webhook's id.")

    def message(self) -> str:
        return "Test delivery from ODS: this webhook works"


class WebhookDisabled(EventData):
    kind = "webhook.disabled"
    description = (
        "The server disabled a webhook because its receiver answered 410 Gone; "
        "it stays disabled until a user enables it again."
    )

    webhook_id: int = Field(description="The webhook's id.")
    url: str = Field(description="The webhook's address.")
    reason: str = Field(description="Why it was disabled.")

    def message(self) -> str:
        return f"Webhook {self.webhook_id} ({self.url}) disabled: {self.reason}"
