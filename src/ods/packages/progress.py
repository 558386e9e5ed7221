"""Downloads in flight in this process, for the progress shown on package objects.

The mesh's download job reports here; package listings read it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from ods.core.context import Context


@dataclass
class DownloadProgress:
    chunks_total: int
    chunks_done: int
    bytes_done: int
    source: str
    started: float = field(default_factory=time.monotonic)
    bytes_this_run: int = 0
    # Why the download stands still, e.g. "waiting for disk space: …"; shown as its
    # status_reason even when the database cannot be written to record it.
    waiting: str | None = None

    @property
    def rate(self) -> float:
        """Bytes per second since this process started the download."""
        elapsed = time.monotonic() - self.started
        return self.bytes_this_run / elapsed if elapsed > 0 else 0.0


class Downloads:
    """DownloadProgress of each download in flight here, by package uuid."""

    def __init__(self) -> None:
        self._by_uuid: dict[str, DownloadProgress] = {}

    @classmethod
    def for_context(cls, context: Context) -> Self:
        return cls()

    def start(self, uuid: str, progress: DownloadProgress) -> None:
        self._by_uuid[uuid] = progress

    def end(self, uuid: str) -> None:
        self._by_uuid.pop(uuid, None)

    def get(self, uuid: str) -> DownloadProgress | None:
        return self._by_uuid.get(uuid)

    def status_reason(self, uuid: str, status: str, stored: str | None) -> str | None:
        """A package's status_reason: why a download in flight here waits, if it does."""
        live = self._by_uuid.get(uuid) if status == "Downloading" else None
        return live.waiting if live is not None and live.waiting else stored

    def close(self) -> None:
        self._by_uuid.clear()
