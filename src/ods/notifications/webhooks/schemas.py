"""The webhooks of the admin API: what is sent and what comes back."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ods.events.kinds import KindName
from ods.notifications.webhooks.formats import Format

DeliveryStatus = Literal["pending", "delivered", "failed"]

WEBHOOK_EXAMPLE: dict[str, Any] = {
    "id": 3,
    "url": "https://hooks.example.org/ods",
    "events": ["package.uploaded", "package.available"],
    "format": "ods",
    "enabled": True,
    "has_secret": True,
    "disabled_reason": None,
    "created": "2026-11-27T09:00:00",
}

DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": 17,
    "event": "package.uploaded",
    "status": "delivered",
    "attempts": 1,
    "response_status": 200,
    "duration_ms": 42,
    "error": None,
    "created": "2026-11-27T09:01:00",
    "next_attempt": None,
}


class WebhookIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.org/ods",
                    "secret": "a long random string",
                    "events": ["package.uploaded"],
                    "format": "ods",
                    "enabled": True,
                }
            ]
        },
    )

    url: str = Field(max_length=2048, description="Where events are posted (http or https).")
    secret: str = Field(
        default="",
        max_length=512,
        description="Signs `ods` deliveries (required for them); write-only.",
    )
    events: list[KindName] = Field(
        default_factory=list, description="The event kinds to send; empty: every kind."
    )
    format: Format = "ods"
    enabled: bool = True


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": False}]})

    url: str | None = Field(default=None, max_length=2048)
    secret: str | None = Field(default=None, max_length=512, description="Write-only.")
    events: list[KindName] | None = None
    format: Format | None = None
    enabled: bool | None = None


class WebhookOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [WEBHOOK_EXAMPLE]})

    id: int
    url: str
    events: list[str]
    format: Format
    enabled: bool
    has_secret: bool = Field(description="Whether a secret is set (it is never shown).")
    disabled_reason: str | None = Field(
        description="Why the server disabled it (its receiver answered 410); null otherwise."
    )
    created: str


class WebhookList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [WEBHOOK_EXAMPLE]}]})

    items: list[WebhookOut]


class WebhookDeliveryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [DELIVERY_EXAMPLE]})

    id: int
    event: str = Field(description="The event's kind.")
    status: DeliveryStatus
    attempts: int
    response_status: int | None = Field(description="The last answer's HTTP status.")
    duration_ms: int | None = Field(description="How long the last attempt took.")
    error: str | None = Field(description="What went wrong on the last attempt.")
    created: str
    next_attempt: str | None = Field(description="When it is tried again, while pending.")


class WebhookDeliveryList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [DELIVERY_EXAMPLE], "total": 1}]}
    )

    items: list[WebhookDeliveryOut]
    total: int
