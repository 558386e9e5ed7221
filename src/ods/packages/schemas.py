"""Package objects as the admin API shows them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ods.core.stages import Stage
from ods.core.statuses import Status

PACKAGE_EXAMPLE: dict[str, Any] = {
    "created": "2017-11-11T03:15:54",
    "created_ts": 1510370154,
    "file_size": 3438044,
    "file_size_hr": "3.3 MB",
    "filename": "NoMAD.pkg",
    "id": 1,
    "sha1": "3fab8a2c4d1e5f60718293a4b5c6d7e8f9012345",
    "sha256": "9b1c0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d",
    "sha512": "0c8b" + "5e" * 62,
    "stage": "Prod",
    "status": "Public",
    "status_reason": None,
    "uuid": "28f7c0aa8f1e4c1e9a572b1d5e9f7c11",
    "progress": None,
    "origin_iss": "e7be2c4bd6a04d6a9a1cb7c1b6bd1d3f",
    "origin_verified": True,
}


class Progress(BaseModel):
    """A download from a peer in flight."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "chunks_done": 2,
                    "chunks_total": 4,
                    "bytes_done": 2097152,
                    "rate": 104857600,
                    "source": "Example ODS 2",
                }
            ]
        }
    )

    chunks_done: int
    chunks_total: int
    bytes_done: int
    rate: int | None = Field(
        description="Bytes per second: measured by the process that fetches it; on other "
        "processes of the site, worked out from the progress it saves (null until it moves)."
    )
    source: str | None = Field(description="The peer it is fetched from.")


class PackageOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [PACKAGE_EXAMPLE]})

    created: str
    created_ts: int
    file_size: int
    file_size_hr: str
    filename: str
    id: int
    sha1: str
    sha256: str
    sha512: str | None = Field(
        default=None,
        description="The file's SHA-512, as its origin computed it (the checksum Jamf Pro "
        "clients verify); null only until this server has worked it out for a version "
        "uploaded before ODS kept it.",
    )
    stage: Stage
    status: Status
    status_reason: str | None = Field(
        description=(
            "Why the package is Failed, when it is; for a Downloading one whose fetch "
            "stopped with its process, that it waits to be taken over."
        )
    )
    uuid: str
    progress: Progress | None = Field(
        default=None, description="While Downloading: chunks, bytes, rate and source peer."
    )
    origin_iss: str | None = Field(
        default=None, description="The iss of the server the package was uploaded to."
    )
    origin_verified: bool = Field(
        default=False,
        description="Whether the origin's signed statement of this version verified here "
        "(or this server signed it); false for versions received before servers signed them.",
    )


class ChunkOut(BaseModel):
    index: int
    sha1: str
    sha256: str


class PackageDetail(PackageOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                PACKAGE_EXAMPLE
                | {
                    "chunks": [
                        {
                            "index": 0,
                            "sha1": "5d41402abc4b2a76b9719d911017c592aabbccdd",
                            "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e"
                            "1b161e5c1fa7425e73043362938b9824",
                        }
                    ]
                }
            ]
        }
    )

    chunks: list[ChunkOut]


class PackageList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [PACKAGE_EXAMPLE], "total": 1}]}
    )

    items: list[PackageOut]
    total: int = Field(description="How many packages match, across all pages.")


class UploadResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "filename": "NoMAD.pkg",
                    "sha1": "3fab8a2c4d1e5f60718293a4b5c6d7e8f9012345",
                    "sha256": "9b1c0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d",
                    "sha512": "0c8b" + "5e" * 62,
                    "id": 1,
                    "uuid": "28f7c0aa8f1e4c1e9a572b1d5e9f7c11",
                    "file_size": 3438044,
                    "stage": "Prod",
                    "status": "Public",
                    "replaced": False,
                    "replaced_uuid": None,
                }
            ]
        }
    )

    filename: str
    sha1: str
    sha256: str
    sha512: str | None = None
    id: int
    uuid: str
    file_size: int
    stage: Stage
    status: Status
    replaced: bool
    replaced_uuid: str | None = Field(
        default=None, description="The version this upload replaced; it is deleted everywhere."
    )


class StageChange(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"stage": "Prod"}]})

    stage: Stage
