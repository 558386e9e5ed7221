"""Downloads in flight, for the progress shown on package objects.

The mesh's download job reports here; package listings read it. A fetch runs
in one process (a worker, on a scaled-out site) and saves its chunk count to
the package's row once a second; every other process shows that count, and a
rate it works out from the counts it has read (`Downloads.watched_rate`).
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


# Downloads watched through their saved progress, at most: the oldest are forgotten first.
WATCHED = 256


@dataclass
class Watched:
    """The first saved chunk count this process read of a download run elsewhere."""

    chunks_done: int
    at: float


class Downloads:
    """DownloadProgress of each download in flight here, by package uuid, and the saved
    progress of those run by other processes, as this process has read it."""

    def __init__(self) -> None:
        self._by_uuid: dict[str, DownloadProgress] = {}
        self._watched: dict[str, Watched] = {}

    def watched_rate(self, uuid: str, chunks_done: int, chunk_size: int) -> int | None:
        """Bytes per second of a download another process runs, from the chunk counts it
        saved since this process first read one; None until the count has moved."""
        now = time.monotonic()
        first = self._watched.get(uuid)
        if first is None or chunks_done < first.chunks_done:
            # First seen here, or started again from fewer chunks (taken over, refetched).
            self._watched[uuid] = Watched(chunks_done, now)
            while len(self._watched) > WATCHED:
                del self._watched[next(iter(self._watched))]
            return None
        if chunks_done == first.chunks_done or now <= first.at:
            return None
        return round((chunks_done - first.chunks_done) * chunk_size / (now - first.at))

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
        self._watched.clear()
