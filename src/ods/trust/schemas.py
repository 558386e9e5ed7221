"""The trust settings in the admin API."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ods.trust.policy import Mode
from ods.trust.statements import ISS

ISS_EXAMPLE = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


class PinnedKey(BaseModel):
    iss: str = Field(description="The server the key belongs to.")
    name: str | None = Field(description="Its name, when it is a registered peer.")
    public_key: str = Field(description="The Ed25519 public key, base64.")
    fingerprint: str = Field(description="A short fingerprint to compare by eye.")
    first_seen: str = Field(description="When it was pinned (UTC, ISO 8601).")
    via_iss: str | None = Field(description="The peer it came through.")


class TrustOut(BaseModel):
    """`GET /api/admin/trust`: whose packages this server takes, and the keys it knows."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "policy": "listed",
                    "origins": [ISS_EXAMPLE],
                    "public_key": "0Wq1m3c5bYw4h2QG3pXh5mGQ0u8o9d2P7bZQ1n8r6kE=",
                    "fingerprint": "3f2a:91c4:07be:5d10:aa42:e9c3",
                    "keys": [],
                }
            ]
        }
    )

    policy: Mode = Field(
        description="`any`: packages from any server of the mesh; "
        "`listed`: only from the servers in `origins` (and this one)."
    )
    origins: list[str] = Field(description="The trusted origin iss values, for `listed`.")
    public_key: str = Field(description="This server's own signing key (public half), base64.")
    fingerprint: str = Field(description="The fingerprint of this server's signing key.")
    keys: list[PinnedKey] = Field(description="Other servers' signing keys, pinned here.")


class TrustUpdate(BaseModel):
    """`PUT /api/admin/trust`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"policy": "listed", "origins": [ISS_EXAMPLE]}]},
    )

    policy: Mode
    origins: list[Annotated[str, StringConstraints(pattern=ISS)]] = Field(
        default=[], max_length=1000, description="Trusted origin iss values (32 hex digits)."
    )
