"""The peer wire format: bodies of the peer API under /api/ods/.

These shapes travel between servers of different versions: add optional
fields, never rename or remove one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ods.core.stages import Stage
from ods.trust.statements import UUID as UUID_PATTERN
from ods.trust.statements import SignedStatement

ISS_PATTERN = r"^[0-9a-f]{32}$"
MAX_FILE_SIZE = 2**50  # far past any package; the server's own limit is checked too
MAX_TIMESTAMP = 2**33  # the year 2242

CARD_EXAMPLE: dict[str, Any] = {
    "iss": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    "name": "Example ODS 2",
    "url": "http://192.168.99.101",
    "stage": "Prod",
    "firewalled_mode": False,
}
PACKAGE_CARD_EXAMPLE: dict[str, Any] = {
    "uuid": "28f7c0aa-8f1e-4c1e-9a57-2b1d5e9f7c11",
    "filename": "NoMAD.pkg",
    "file_size": 3438044,
    "sha1": "3fab8a2c4d1e5f60718293a4b5c6d7e8f9012345",
    "sha256": "9b1c0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d",
    "stage": "Prod",
    "created_ts": 1510370154,
    "origin_iss": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
}


class ServerCard(BaseModel):
    """What one server tells another about itself."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [CARD_EXAMPLE]})

    iss: str = Field(pattern=ISS_PATTERN)
    name: str = Field(max_length=255)
    url: str = Field(max_length=1024)
    stage: Stage
    firewalled_mode: bool
    public_key: str | None = Field(
        default=None,
        max_length=60,
        description="The server's Ed25519 public key (base64), which signs its statements.",
    )


class PeerRegistration(ServerCard):
    """`POST /api/ods/register`: the registering server's card and the sealed link secret."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [CARD_EXAMPLE | {"sealed_secret": "bm9uY2UxMjM0NTY3ODkwYWJjZGVmc2VhbGVk"}]
        },
    )

    sealed_secret: str = Field(max_length=200)
    link_proof: str | None = Field(
        default=None,
        max_length=64,
        description="When registering again: the new sealed secret signed with the current one.",
    )


class RegistrationAnswer(ServerCard):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [CARD_EXAMPLE | {"proof": "5be1c0ffee" + "0" * 54}]},
    )

    proof: str = Field(description="HMAC with the link secret: the answer comes from the peer.")


class ChunkDigests(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    sha1: str = Field(pattern=r"^[0-9a-f]{40}$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class PackageCard(BaseModel):
    """One package version as peers describe it to each other."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [PACKAGE_CARD_EXAMPLE]}
    )

    uuid: str = Field(pattern=UUID_PATTERN)
    filename: str = Field(max_length=255)
    file_size: int = Field(ge=0, le=MAX_FILE_SIZE)
    sha1: str = Field(pattern=r"^[0-9a-f]{40}$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    stage: Stage
    created_ts: int = Field(ge=0, le=MAX_TIMESTAMP)
    origin_iss: str | None = Field(default=None, pattern=ISS_PATTERN)
    replaces: str | None = Field(
        default=None, pattern=UUID_PATTERN, description="The version this one replaced, if any."
    )
    statement: SignedStatement | None = Field(
        default=None, description="The origin's signed statement of this version."
    )
    stage_statement: SignedStatement | None = Field(
        default=None, description="The latest signed stage change, if the stage changed."
    )


class PackageManifest(PackageCard):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                PACKAGE_CARD_EXAMPLE
                | {"chunks": [{"index": 0, "sha1": "5d41" + "0" * 36, "sha256": "2cf2" + "0" * 60}]}
            ]
        },
    )

    chunks: list[ChunkDigests]


TOMBSTONE_EXAMPLE: dict[str, Any] = {
    "uuid": "28f7c0aa-8f1e-4c1e-9a57-2b1d5e9f7c11",
    "filename": "NoMAD.pkg",
    "reason": "deleted",
    "created_ts": 1510370154,
}


class TombstoneCard(BaseModel):
    """A package version deleted or replaced by an admin: gone on every server."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [TOMBSTONE_EXAMPLE]})

    uuid: str = Field(pattern=UUID_PATTERN)
    filename: str = Field(max_length=255)
    reason: Literal["deleted", "replaced"]
    created_ts: int = Field(ge=0, le=MAX_TIMESTAMP)
    replaced_by: str | None = Field(
        default=None, pattern=UUID_PATTERN, description="The uuid of the version that replaced it."
    )
    replaced_by_stage: Stage | None = None
    statement: SignedStatement | None = Field(
        default=None,
        description="What vouches for it: a signed delete, or the successor's package statement.",
    )


class Inventory(BaseModel):
    """What a peer has published, and the versions it knows are gone."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"packages": [PACKAGE_CARD_EXAMPLE], "tombstones": [TOMBSTONE_EXAMPLE]}]
        }
    )

    packages: list[PackageCard]
    tombstones: list[TombstoneCard] = []


class Notification(BaseModel):
    """`POST /api/ods/notify`: a package version is available at the sender."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"uuid": PACKAGE_CARD_EXAMPLE["uuid"], "stage": "Prod"}]},
    )

    uuid: str = Field(pattern=UUID_PATTERN)
    stage: Stage
    stage_statement: SignedStatement | None = Field(
        default=None, description="The signed stage change, when the stage changed."
    )
