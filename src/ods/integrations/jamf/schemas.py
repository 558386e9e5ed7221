"""The Jamf Pro integration as the admin API shows and takes it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ods.core.stages import Stage

SETTINGS_EXAMPLE: dict[str, Any] = {
    "url": "https://example.jamfcloud.com",
    "client_id": "3e4c9a1f-6b8d-4e2a-9c0f-1a2b3c4d5e6f",
    "stages": ["Prod"],
    "category": "Apps",
    "enabled": True,
}


class JamfSettingsIn(BaseModel):
    """`PUT /api/admin/integrations/jamf`; `client_secret` may be left out to keep the one
    stored (it is required the first time)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [SETTINGS_EXAMPLE | {"client_secret": "s3cr3t…"}]},
    )

    url: str = Field(
        max_length=2048,
        pattern=r"^https?://[^/\s?#]+/?$",
        description="Jamf Pro's address, like https://example.jamfcloud.com (no path).",
    )
    client_id: str = Field(min_length=1, max_length=255, description="The API client's id.")
    client_secret: str | None = Field(
        default=None, min_length=1, max_length=1024, description="The API client's secret."
    )
    stages: list[Stage] = Field(
        max_length=3, description="Packages Public at these stages get a record."
    )
    category: str | None = Field(
        default=None, max_length=255, description="A Jamf Pro category, by name; null: none."
    )
    enabled: bool = Field(default=True, strict=True)

    @field_validator("url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


class JamfSettingsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                SETTINGS_EXAMPLE
                | {
                    "configured": True,
                    "secret_set": True,
                    "records": 12,
                    "last_sync": "2026-11-27T04:00:00",
                    "last_sync_ts": 1795752000,
                    "last_outcome": "ok",
                    "last_error": None,
                }
            ]
        }
    )

    configured: bool
    url: str | None
    client_id: str | None
    secret_set: bool = Field(description="Whether a client secret is stored (never shown).")
    stages: list[Stage]
    category: str | None
    enabled: bool
    records: int = Field(description="Package records in Jamf Pro that ODS keeps.")
    last_sync: str | None
    last_sync_ts: int | None
    last_outcome: Literal["ok", "failed"] | None
    last_error: str | None


class JamfCheck(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"ok": True, "status": 200, "message": "Jamf Pro accepted the credentials"}
            ]
        }
    )

    ok: bool
    status: int | None = Field(description="Jamf Pro's HTTP status; null when unreachable.")
    message: str = Field(description="What Jamf Pro said.")


class ReconcileIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"repair": True}]})

    repair: bool = Field(
        default=False, strict=True, description="Repair the drift found, not only show it."
    )


class OrphanRecord(BaseModel):
    filename: str
    jamf_id: str


class JamfDrift(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "missing": ["NoMAD.pkg"],
                    "stale": [],
                    "orphaned": [{"filename": "Old.pkg", "jamf_id": "42"}],
                    "repaired": True,
                    "errors": [],
                }
            ]
        }
    )

    missing: list[str] = Field(description="Packages that should have a record and have none.")
    stale: list[str] = Field(description="Records whose checksum is not the package's SHA-512.")
    orphaned: list[OrphanRecord] = Field(
        description="Records ODS made whose package is gone here or left the listed stages."
    )
    repaired: bool
    errors: list[str] = Field(description="What could not be repaired, and why.")
