"""Progress of a long backup or restore on the terminal (stderr), a line every few seconds."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ods.core.humanize import size_hr

EVERY_SECONDS = 2.0


class Progress:
    """Counts bytes of one step and says how far it is, without flooding the terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.step = ""
        self.total = 0
        self.done = 0
        self._said = 0.0

    def say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def start(self, step: str, total: int = 0) -> None:
        self.step, self.total, self.done = step, total, 0
        self._said = time.monotonic()

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._said >= EVERY_SECONDS:
            self._said = now
            self.say(self._line())

    def finish(self) -> None:
        self.say(self._line())

    def _line(self) -> str:
        if self.total:
            percent = 100 * self.done // self.total
            return f"{self.step}: {size_hr(self.done)} of {size_hr(self.total)} ({percent}%)"
        return f"{self.step}: {size_hr(self.done)}"
