"""Downloads in flight in this process, for the progress shown on package objects."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Progress:
    chunks_total: int
    chunks_done: int
    bytes_done: int
    source: str
    started: float = field(default_factory=time.monotonic)
    bytes_this_run: int = 0

    @property
    def rate(self) -> float:
        """Bytes per second since this process started the download."""
        elapsed = time.monotonic() - self.started
        return self.bytes_this_run / elapsed if elapsed > 0 else 0.0


DOWNLOADS: dict[str, Progress] = {}
