"""Every kind of job, with its typed payload and its key.

A job's key names the work, so recording the same work twice is harmless.
The payloads are stored as JSON in the job's row and read back into these
models; field names stay stable across versions (rows outlive upgrades).
Producers import these kinds; the handlers that run them are bound in
`ods.lifecycle`, so a feature can ask for mesh work without importing the
mesh.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class JobPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassVar[str]

    def key(self) -> str:
        raise NotImplementedError

    def group(self) -> str | None:
        """The concurrency group it belongs to, if any: a process runs only so many jobs
        of one group at once (`ods.jobs.groups`)."""
        return None


class PeerJob(JobPayload):
    """Work with one peer (`peer`: its iss). One peer's jobs form a group, so a peer that
    is slow, by fault or on purpose, holds only its share of the job slots."""

    peer: str

    def group(self) -> str | None:
        return f"peer:{self.peer}"


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


class Notify(PeerJob):
    """Tell one peer that a package is available here."""

    kind: ClassVar[str] = "notify"
    uuid: str

    def key(self) -> str:
        return f"notify:{self.uuid}:{self.peer}"


class Forget(PeerJob):
    """Send one peer the tombstone of a deleted or replaced version."""

    kind: ClassVar[str] = "forget"
    uuid: str

    def key(self) -> str:
        return f"forget:{self.uuid}:{self.peer}"


class Fetch(PeerJob):
    """Download a package version, from the peer that offered it first or any other.

    Its group is the peer that offered it, whichever source the fetch ends up using."""

    kind: ClassVar[str] = "fetch"
    uuid: str

    def key(self) -> str:
        return f"fetch:{self.uuid}"


class Reconcile(PeerJob):
    """Compare inventories with one peer and converge."""

    kind: ClassVar[str] = "reconcile"

    def key(self) -> str:
        return f"reconcile:{self.peer}"


class DeliverWebhook(JobPayload):
    """Post one webhook's pending deliveries, oldest first, one at a time.

    One job per webhook keeps its events in the order they happened: a later
    delivery waits while an earlier one is retried."""

    kind: ClassVar[str] = "webhook"
    webhook_id: int

    def key(self) -> str:
        return f"webhook:{self.webhook_id}"


class JamfSync(JobPayload):
    """Make Jamf Pro's record of one filename match what this server holds: a record with
    the file's SHA-512 while it is Public at a listed stage, none (of ODS's) otherwise."""

    kind: ClassVar[str] = "jamf_sync"
    filename: str

    def key(self) -> str:
        # Filenames can be long; the key column is 64 characters.
        return "jamf:" + hashlib.sha256(self.filename.encode("utf-8")).hexdigest()[:40]
