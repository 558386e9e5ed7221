"""Events of integrations: package records kept in Jamf Pro."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ods.events.base import EventData


class JamfSynced(EventData):
    kind = "jamf.synced"
    description = (
        "ODS made, updated or deleted a package record in Jamf Pro, or took over the "
        "checksum of a record it found there (`adopted`: a record ODS never deletes)."
    )

    filename: str = Field(description="The package's filename (the record's fileName).")
    action: Literal["created", "updated", "adopted", "deleted"] = Field(
        description="What was done to the record."
    )
    jamf_id: str = Field(description="The record's id in Jamf Pro.")

    def message(self) -> str:
        return f"Jamf Pro record of {self.filename} {self.action} (id {self.jamf_id})"


class JamfFailed(EventData):
    kind = "jamf.failed"
    description = (
        "ODS gave up keeping a package's record in Jamf Pro after its retries; the next "
        "change of the package, or a reconcile, tries again."
    )

    filename: str = Field(description="The package's filename.")
    reason: str = Field(description="What Jamf Pro answered, or why it could not be reached.")

    def message(self) -> str:
        return f"Jamf Pro record of {self.filename} not synced: {self.reason}"
