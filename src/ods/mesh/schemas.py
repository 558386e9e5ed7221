"""Bodies of the admin API's mesh operations: registering, and the peer list."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ods.core.stages import Stage
from ods.core.urls import Transport
from ods.mesh.protocol.wire import ISS_PATTERN

PEER_EXAMPLE: dict[str, Any] = {
    "firewalled_mode": False,
    "id": 1,
    "iss": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    "name": "Example ODS 2",
    "registered_on": "2017-11-10T04:45:47",
    "registered_on_ts": 1510289147,
    "stage": "Prod",
    "url": "http://192.168.99.101",
    "transport": "http",
    "reachable": True,
    "last_contact": "2017-11-10T05:00:00",
    "last_error": None,
    "pending_from": 0,
    "pending_to": 0,
}


class RegisterRequest(BaseModel):
    """`POST /api/admin/register`: the other ODS's URL, issuer id and key (from its About page)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "http://192.168.99.101",
                    "iss_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
                    "key": "r3Yt0Zt4m3e4yq0r4tGQ7wq6n5mN0b2k3l9Qp2x1c8s=",
                }
            ]
        },
    )

    url: str = Field(min_length=1, max_length=1024)
    iss_id: str = Field(pattern=ISS_PATTERN, description="The other server's iss.")
    key: str = Field(min_length=1, max_length=100, description="The other server's key.")


class PeerOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [PEER_EXAMPLE]})

    firewalled_mode: bool
    id: int
    iss: str
    name: str
    registered_on: str
    registered_on_ts: int
    stage: Stage
    url: str
    transport: Transport = Field(
        description=(
            '"https" when the link to this peer is encrypted (TLS); "http" when it is not, '
            "and what crosses it can be read on the way."
        )
    )
    reachable: bool
    last_contact: str | None
    last_error: str | None
    pending_from: int = Field(description="Packages being fetched from this peer now.")
    pending_to: int = Field(description="Notifications to this peer not yet delivered.")


class PeerList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [PEER_EXAMPLE]}]})

    items: list[PeerOut]
