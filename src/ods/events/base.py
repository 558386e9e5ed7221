"""What every event kind is: data with a name, a description and a one-line message."""

from __future__ import annotations

from abc import abstractmethod
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict

from ods.core.uuids import public_uuid

# A package version's uuid in event data: the admin API's 32 hex digits, whichever
# spelling the code that records the event holds (the database keeps the dashed one).
PackageUuid = Annotated[str, AfterValidator(public_uuid)]


class EventData(BaseModel):
    """The data of an event; each class in CATALOGUE is one kind."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def message(self) -> str:
        """The event as one line for the event log."""

    @property
    def package_uuid(self) -> str | None:
        """The package version the event is about, if any."""
        return None
