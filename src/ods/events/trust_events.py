"""Events of origin signatures: keys pinned or refused, statements refused."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ods.events.base import EventData, PackageUuid


class OriginKeyPinned(EventData):
    kind = "trust.key_pinned"
    description = (
        "This server saw another server's signing key for the first time and pinned it: "
        "from then on only that key is accepted for that server's statements."
    )

    iss: str = Field(description="The server whose key was pinned.")
    fingerprint: str = Field(description="A short fingerprint of the public key.")
    via_iss: str | None = Field(
        description="The peer it came through: the server itself at registration, or a relay."
    )

    def message(self) -> str:
        return f"Pinned the signing key {self.fingerprint} of {self.iss}"


class OriginKeyRefused(EventData):
    kind = "trust.key_refused"
    description = (
        "A statement or a registration came with another signing key than the one pinned "
        "for its server, and was refused."
    )

    iss: str = Field(description="The server the key claimed to be.")
    fingerprint: str = Field(description="The fingerprint of the refused key.")
    pinned_fingerprint: str = Field(description="The fingerprint of the key pinned for it.")
    via_iss: str | None = Field(description="The peer that sent it.")

    def message(self) -> str:
        return (
            f"Refused key {self.fingerprint} for {self.iss}: "
            f"{self.pinned_fingerprint} is pinned for it"
        )


class StatementRefused(EventData):
    kind = "trust.refused"
    description = (
        "A package, stage change or delete from a peer was not taken because its signed "
        "statement did not hold, or its origin is not trusted here."
    )

    subject: Literal["package", "stage", "delete"] = Field(
        description="What was refused: a package version, a stage change, or a delete."
    )
    uuid: PackageUuid = Field(description="The package version it was about.")
    filename: str | None = Field(description="The filename it claimed, when known.")
    peer: str = Field(description="The name of the peer that sent it.")
    peer_iss: str = Field(description="The iss of the peer that sent it.")
    reason: str = Field(description="Why it was refused.")

    @property
    def package_uuid(self) -> str | None:
        return self.uuid

    def message(self) -> str:
        name = self.filename or self.uuid
        return f"Refused {self.subject} of {name} from {self.peer}: {self.reason}"


class OriginKeyForgotten(EventData):
    kind = "trust.key_forgotten"
    description = "An admin unpinned a server's signing key; the next one seen is pinned."

    iss: str = Field(description="The server whose key was unpinned.")
    fingerprint: str = Field(description="The fingerprint of the unpinned key.")

    def message(self) -> str:
        return f"Unpinned the signing key {self.fingerprint} of {self.iss}"


class TrustPolicyChanged(EventData):
    kind = "trust.policy_changed"
    description = "An admin changed whose packages this server takes."

    policy: Literal["any", "listed"] = Field(
        description="`any` server of the mesh, or only `listed` origins."
    )
    origins: list[str] = Field(description="The trusted origins, for `listed`.")

    def message(self) -> str:
        if self.policy == "any":
            return "Trust policy: packages from any server of the mesh"
        return f"Trust policy: packages only from {len(self.origins)} listed origin(s)"
