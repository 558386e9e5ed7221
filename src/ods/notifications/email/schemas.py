"""Request and response bodies of /api/admin/email-subscriptions."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from ods.events.kinds import KindName

MAX_DIGEST_MINUTES = 7 * 24 * 60
# One address, nothing else: no display name, no list, no whitespace or control
# characters anywhere (a CR or LF would start a new mail header).
ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def check_address(value: str) -> str:
    # Exactly what the schema's pattern says, so that every address it allows is taken.
    if not ADDRESS.fullmatch(value) or len(value) > 254:
        raise ValueError("must be one plain email address such as admin@example.org")
    return value


Address = Annotated[
    str,
    Field(
        min_length=6,
        max_length=254,
        pattern=ADDRESS.pattern,
        description="One plain address (no display name, no list).",
    ),
    AfterValidator(check_address),
]


def not_text(value: object) -> object:
    """An integer as JSON has it (60 or 60.0), not "60" or true."""
    if isinstance(value, str | bool):
        raise ValueError("must be a number")
    return value


DigestMinutes = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_DIGEST_MINUTES,
        description="0: one mail per event. More: one mail per this many minutes "
        "gathering the events of the interval.",
    ),
    BeforeValidator(not_text),
]
Kinds = Annotated[
    list[KindName],
    Field(max_length=100, description="Event kinds to mail about; empty: every kind."),
]

SUBSCRIPTION_EXAMPLE: dict[str, Any] = {
    "id": 1,
    "address": "mac-admins@example.org",
    "events": ["package.uploaded", "package.failed"],
    "digest_minutes": 0,
    "created": "2026-11-27T09:00:00",
}
DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": 7,
    "event": "package.uploaded",
    "status": "delivered",
    "attempts": 1,
    "error": None,
    "created": "2026-11-27T09:00:05",
    "next_attempt": None,
    "events": [42],
}


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "address": "mac-admins@example.org",
                    "events": ["package.uploaded"],
                    "digest_minutes": 0,
                }
            ]
        },
    )

    address: Address
    events: Kinds = []
    digest_minutes: DigestMinutes = 0


class SubscriptionUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"digest_minutes": 60}]}
    )

    address: Address | None = None
    events: Kinds | None = None
    digest_minutes: DigestMinutes | None = None


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [SUBSCRIPTION_EXAMPLE]})

    id: int
    address: str
    events: list[str]
    digest_minutes: int
    created: str


class SubscriptionList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [SUBSCRIPTION_EXAMPLE], "total": 1}]}
    )

    items: list[SubscriptionOut]
    total: int


class EmailDeliveryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [DELIVERY_EXAMPLE]})

    id: int
    event: str = Field(
        description="The event's kind; `digest` for a mail of several, `ping` for a test."
    )
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    error: str | None
    created: str
    next_attempt: str | None
    events: list[int] = Field(description="Ids of the events (GET /api/admin/events) it holds.")


class EmailDeliveryList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [DELIVERY_EXAMPLE], "total": 1}]}
    )

    items: list[EmailDeliveryOut]
    total: int
