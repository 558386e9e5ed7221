"""Events of registered servers: registrations, refusals, reachability."""

from __future__ import annotations

from pydantic import Field

from ods.events.base import EventData


class PeerEvent(EventData):
    """An event about another ODS this one is, or was, registered with."""

    iss: str = Field(description="The server's iss, its permanent identity.")
    name: str = Field(description="The server's name (may be empty).")
    url: str = Field(description="The server's address.")


class PeerRegistered(PeerEvent):
    kind = "peer.registered"
    description = "This server and another one registered with each other."

    by_peer: bool = Field(
        description="True when the other server registered with this one; "
        "false when a user here registered with it."
    )
    re_registered: bool = Field(
        description="True when the other server was registered already and registered again."
    )

    def message(self) -> str:
        if not self.by_peer:
            return f"Registered with {self.name} ({self.url})"
        verb = "re-registered" if self.re_registered else "registered"
        return f"{self.name} ({self.url}) {verb} with this server"


class PeerRegistrationRefused(PeerEvent):
    kind = "peer.registration_refused"
    description = (
        "A server asked to register with this one and was refused: it claimed the iss of a "
        "registered server without proving that link's secret, or came with another signing key."
    )

    reason: str = Field(description="Why it was refused.")

    def message(self) -> str:
        return f"Refused a registration as {self.iss} from {self.url}: {self.reason}"


class PeerUnregistered(PeerEvent):
    kind = "peer.unregistered"
    description = "This server and another one are no longer registered with each other."

    by_peer: bool = Field(
        description="True when the other server unregistered; false when a user here did."
    )

    def message(self) -> str:
        if self.by_peer:
            return f"{self.name} ({self.url}) unregistered from this server"
        return f"Unregistered {self.name} ({self.url})"


class PeerReachable(PeerEvent):
    kind = "peer.reachable"
    description = "A registered server that did not answer answers again."

    def message(self) -> str:
        return f"{self.name} is reachable again"


class PeerUnreachable(PeerEvent):
    kind = "peer.unreachable"
    description = "A registered server stopped answering; exchanges with it are retried."

    error: str = Field(description="What went wrong when this server tried to reach it.")

    def message(self) -> str:
        return f"{self.name}: {self.error}"
