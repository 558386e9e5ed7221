"""Every kind of job, with its typed payload and its key.

A job's key names the work, so recording the same work twice is harmless.
The payloads are stored as JSON in the job's row and read back into these
models; field names stay stable across versions (rows outlive upgrades).
Producers import these kinds; the handlers that run them are bound in
`ods.lifecycle`, so a feature can ask for mesh work without importing the
mesh.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class JobPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassVar[str]

    def key(self) -> str:
        raise NotImplementedError


class AnnouncePackage(JobPayload):
    """Tell every peer that would take it that a package is Public here."""

    kind: ClassVar[str] = "announce"
    uuid: str

    def key(self) -> str:
        return f"announce:{self.uuid}"


class AnnounceTombstone(JobPayload):
    """Tell every peer that is pushed to that a package version was deleted or replaced."""

    kind: ClassVar[str] = "announce_tombstone"
    uuid: str

    def key(self) -> str:
        return f"announce_tombstone:{self.uuid}"


class Notify(JobPayload):
    """Tell one peer that a package is available here."""

    kind: ClassVar[str] = "notify"
    uuid: str
    peer: str

    def key(self) -> str:
        return f"notify:{self.uuid}:{self.peer}"


class Forget(JobPayload):
    """Send one peer the tombstone of a deleted or replaced version."""

    kind: ClassVar[str] = "forget"
    uuid: str
    peer: str

    def key(self) -> str:
        return f"forget:{self.uuid}:{self.peer}"


class Fetch(JobPayload):
    """Download a package version, from the peer that offered it first or any other."""

    kind: ClassVar[str] = "fetch"
    uuid: str
    peer: str

    def key(self) -> str:
        return f"fetch:{self.uuid}"


class Reconcile(JobPayload):
    """Compare inventories with one peer and converge."""

    kind: ClassVar[str] = "reconcile"
    peer: str

    def key(self) -> str:
        return f"reconcile:{self.peer}"
