"""The resident memory of a real process, watched from the test: its idle level, then its
peak while something is done to it, sampled in a thread every few milliseconds."""

from __future__ import annotations

import statistics
import threading
import time
from types import TracebackType

import psutil

MIB = 1024 * 1024
SAMPLE_SECONDS = 0.01


class MemoryWatch:
    """`idle()` first, then `with watch:` around the attack; `growth` is peak minus idle."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.idle_rss = 0
        self.peak_rss = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-watch", daemon=True)

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    def idle(self, seconds: float = 1.0) -> int:
        """The median of the process's RSS over `seconds` of quiet."""
        found = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found.append(self.rss())
            time.sleep(SAMPLE_SECONDS)
        self.idle_rss = int(statistics.median(found))
        return self.idle_rss

    @property
    def growth(self) -> int:
        return self.peak_rss - self.idle_rss

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.rss()
            except psutil.NoSuchProcess:
                return
            self.peak_rss = max(self.peak_rss, rss)
            self.samples += 1
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> MemoryWatch:
        assert self.idle_rss, "measure the idle level first"
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
