"""The event catalogue: every kind of event, what it means, its data and its message.

Each kind is one class. Its fields are the event's data: stored as JSON with
the event, shown by the API, and what webhooks and email are to send. Its
`message()` is the line the event log shows. Data names things as an admin
knows them and never holds a password, a token, or a hash of either.

`CATALOGUE` is the list of kinds; `KINDS` finds a kind's class by its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from ods.core.humanize import size_hr
from ods.core.models import Package
from ods.core.stages import Stage
from ods.core.statuses import Status
from ods.events.account_events import (
    LoginFailed as LoginFailed,
)
from ods.events.account_events import (
    PasswordCheckFailed as PasswordCheckFailed,
)
from ods.events.account_events import (
    TokenCreated as TokenCreated,
)
from ods.events.account_events import (
    TokenEvent as TokenEvent,
)
from ods.events.account_events import (
    TokenRevoked as TokenRevoked,
)
from ods.events.account_events import (
    UserCreated as UserCreated,
)
from ods.events.account_events import (
    UserDeleted as UserDeleted,
)
from ods.events.account_events import (
    UserEvent as UserEvent,
)
from ods.events.account_events import (
    UserPasswordChanged as UserPasswordChanged,
)
from ods.events.account_events import (
    UserUpdated as UserUpdated,
)
from ods.events.base import EventData, PackageUuid
from ods.events.integration_events import JamfFailed, JamfSynced
from ods.events.notification_events import Ping, WebhookDisabled
from ods.events.peer_events import (
    PeerEvent as PeerEvent,
)
from ods.events.peer_events import (
    PeerReachable as PeerReachable,
)
from ods.events.peer_events import (
    PeerRegistered as PeerRegistered,
)
from ods.events.peer_events import (
    PeerRegistrationRefused as PeerRegistrationRefused,
)
from ods.events.peer_events import (
    PeerUnreachable as PeerUnreachable,
)
from ods.events.peer_events import (
    PeerUnregistered as PeerUnregistered,
)
from ods.events.trust_events import (
    OriginKeyForgotten,
    OriginKeyPinned,
    OriginKeyRefused,
    StatementRefused,
    TrustPolicyChanged,
)

# --- packages ------------------------------------------------------------------


class PackageFacts(TypedDict):
    """What every package event tells about its package version."""

    uuid: str
    filename: str
    stage: Stage
    status: Status
    file_size: int
    sha1: str
    sha256: str


def package_facts(package: Package) -> PackageFacts:
    """A package row as the data of a package event, as it is at this moment."""
    return PackageFacts(
        uuid=package.uuid,
        filename=package.filename,
        stage=Stage(package.stage),
        status=Status(package.status),
        file_size=package.file_size,
        sha1=package.sha1,
        sha256=package.sha256,
    )


class PackageEvent(EventData):
    """An event about one package version."""

    uuid: PackageUuid = Field(
        description="The package version's uuid; every upload makes a new one."
    )
    filename: str = Field(description="The package's filename.")
    stage: Stage = Field(description="The package's stage.")
    status: Status = Field(description="The package's status here when the event was recorded.")
    file_size: int = Field(description="The file's size in bytes.")
    sha1: str = Field(description="The file's SHA1, in hex.")
    sha256: str = Field(description="The file's SHA-256, in hex.")

    @property
    def package_uuid(self) -> str | None:
        return self.uuid


class PackageUploaded(PackageEvent):
    kind = "package.uploaded"
    description = "A package was uploaded to this server (recorded as it is published)."

    def message(self) -> str:
        return f"{self.filename} uploaded ({self.stage}, {size_hr(self.file_size)})"


class PackageReplaced(PackageEvent):
    kind = "package.replaced"
    description = (
        "A package was uploaded in place of another version of its filename, "
        "which is then removed on every server."
    )

    replaced_uuid: PackageUuid = Field(description="The uuid of the version it replaced.")

    def message(self) -> str:
        return f"{self.filename} replaced ({self.stage}, {size_hr(self.file_size)})"


class PackageDownloading(PackageEvent):
    kind = "package.downloading"
    description = "A registered server offered a package and this server started fetching it."

    peer: str = Field(description="The name of the server it is fetched from.")
    peer_iss: str = Field(description="The iss of the server it is fetched from.")

    def message(self) -> str:
        return f"{self.filename} ({size_hr(self.file_size)}) is coming from {self.peer}"


class PackageAvailable(PackageEvent):
    kind = "package.available"
    description = "A package fetched from a registered server was verified and is served here."

    peer: str = Field(description="The name of the server it was fetched from.")
    peer_iss: str = Field(description="The iss of the server it was fetched from.")

    def message(self) -> str:
        return f"{self.filename} is available here"


class PackageStageChanged(PackageEvent):
    kind = "package.stage_changed"
    description = "A package moved to another stage, here or on a registered server."

    previous_stage: Stage = Field(description="The stage it had before.")
    peer: str | None = Field(
        default=None, description="The name of the server it was moved on; null when here."
    )
    peer_iss: str | None = Field(
        default=None, description="The iss of the server it was moved on; null when here."
    )

    def message(self) -> str:
        moved = f"{self.filename} moved from {self.previous_stage} to {self.stage}"
        return moved if self.peer is None else f"{moved} (from {self.peer})"


class PackageWithdrawn(PackageEvent):
    kind = "package.withdrawn"
    description = (
        "A package this server received moved to a stage it does not take: it is no longer "
        "downloadable here, and kept, so that it is back at once when it is promoted again."
    )

    server_stage: Stage = Field(description="This server's stage.")

    def message(self) -> str:
        return (
            f"{self.filename} is withdrawn here: it is at {self.stage} now, "
            f"and this server takes {self.server_stage} and later stages"
        )


class PackageRestored(PackageEvent):
    kind = "package.restored"
    description = "A withdrawn package moved to a stage this server takes: downloadable again."

    def message(self) -> str:
        return f"{self.filename} is back at {self.stage} and downloadable again"


DeleteReason = Literal["deleted", "replaced", "superseded"]


class PackageDeleted(PackageEvent):
    kind = "package.deleted"
    description = (
        "A package version was deleted here: by a user, or because it was deleted or "
        "replaced on a registered server."
    )

    reason: DeleteReason = Field(
        description="deleted (a user deleted it), replaced (a newer upload replaced it) "
        "or superseded (it lost a conflict)."
    )
    peer: str | None = Field(
        default=None,
        description="The name of the server it was deleted or replaced on; null when here.",
    )
    peer_iss: str | None = Field(
        default=None,
        description="The iss of the server it was deleted or replaced on; null when here.",
    )

    def message(self) -> str:
        if self.peer is None:
            return f"{self.filename} deleted"
        verb = "replaced" if self.reason == "replaced" else "deleted"
        return f"{self.filename} {verb} on {self.peer}: removed here too"


class PackageFailed(PackageEvent):
    kind = "package.failed"
    description = (
        "Fetching a package from the registered servers gave up; it is Failed until it is "
        "retried (by an admin, or by reconciliation with back-off)."
    )

    reason: str = Field(description="Why the fetch gave up.")

    def message(self) -> str:
        return f"{self.filename} could not be fetched: {self.reason}"


class PackageWaitingForSpace(PackageEvent):
    kind = "package.waiting_for_space"
    description = (
        "A fetch from a registered server has no room on this server's disk (beside "
        "ODS_MIN_FREE_SPACE): it keeps the chunks it has and goes on by itself once space "
        "is freed."
    )

    needed_bytes: int = Field(description="The bytes the fetch still has to write.")
    free_bytes: int = Field(description="The bytes free on the disk when it stopped.")
    reserve_bytes: int = Field(description="ODS_MIN_FREE_SPACE, in bytes.")

    def message(self) -> str:
        return (
            f"{self.filename} waits for disk space: {size_hr(self.needed_bytes)} to go, "
            f"{size_hr(self.free_bytes)} free"
        )


class PackageConflict(PackageEvent):
    kind = "package.conflict"
    description = (
        "Two different uploads of one filename met: the newer wins on every server, the other "
        "is set aside. The package fields describe the version this server had."
    )

    incoming_uuid: PackageUuid = Field(
        description="The uuid of the version a registered server offered."
    )
    incoming_stage: Stage = Field(description="The offered version's stage.")
    incoming_file_size: int = Field(description="The offered version's size in bytes.")
    incoming_sha1: str = Field(description="The offered version's SHA1, in hex.")
    incoming_sha256: str = Field(description="The offered version's SHA-256, in hex.")
    peer: str = Field(description="The name of the server that offered it.")
    peer_iss: str = Field(description="The iss of the server that offered it.")
    winner_uuid: PackageUuid = Field(
        description="The uuid of the version that wins (the newer upload)."
    )
    loser_uuid: PackageUuid = Field(description="The uuid of the version set aside.")

    @property
    def package_uuid(self) -> str | None:
        return self.loser_uuid

    def message(self) -> str:
        return (
            f"{self.filename}: two different uploads met (uuid {self.uuid} here, "
            f"uuid {self.incoming_uuid} from {self.peer}); the newer upload, "
            f"{self.winner_uuid}, wins on every server and {self.loser_uuid} is set aside"
        )


# --- this server ---------------------------------------------------------------


Setting = Literal["name", "url", "stage", "firewalled_mode"]


class SettingChange(BaseModel):
    """One server setting as it was and as it is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    setting: Setting = Field(description="name, url, stage or firewalled_mode.")
    before: str | bool = Field(description="The value before the change.")
    after: str | bool = Field(description="The value after the change.")

    def __str__(self) -> str:
        return f"{self.setting} {_shown(self.before)} -> {_shown(self.after)}"


def _shown(value: str | bool) -> str:
    return repr(value) if isinstance(value, str) else str(value)


class ServerUpdated(EventData):
    kind = "server.updated"
    description = "A user changed this server's settings."

    name: str = Field(description="The server's name, after the change.")
    url: str = Field(description="The server's address, after the change.")
    stage: Stage = Field(description="The server's stage, after the change.")
    firewalled_mode: bool = Field(description="Whether firewalled mode is on, after the change.")
    changes: tuple[SettingChange, ...] = Field(
        description="Each setting that changed, with its value before and after."
    )

    def message(self) -> str:
        return "Server settings: " + "; ".join(str(change) for change in self.changes)


CATALOGUE: tuple[type[EventData], ...] = (
    PackageUploaded,
    PackageReplaced,
    PackageDownloading,
    PackageAvailable,
    PackageStageChanged,
    PackageWithdrawn,
    PackageRestored,
    PackageDeleted,
    PackageFailed,
    PackageWaitingForSpace,
    PackageConflict,
    PeerRegistered,
    PeerRegistrationRefused,
    PeerUnregistered,
    PeerReachable,
    PeerUnreachable,
    ServerUpdated,
    UserCreated,
    UserUpdated,
    UserDeleted,
    UserPasswordChanged,
    TokenCreated,
    TokenRevoked,
    LoginFailed,
    PasswordCheckFailed,
    OriginKeyPinned,
    OriginKeyRefused,
    OriginKeyForgotten,
    StatementRefused,
    TrustPolicyChanged,
    Ping,
    WebhookDisabled,
    JamfSynced,
    JamfFailed,
)

KINDS: Mapping[str, type[EventData]] = {event.kind: event for event in CATALOGUE}
