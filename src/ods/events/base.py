"""What every event kind is: data with a name, a description and a one-line message."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from pydantic import BaseModel, ConfigDict


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
