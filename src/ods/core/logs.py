"""Keeping the log readable when the same thing goes wrong again and again.

An expected condition (a peer down, a database that refuses writes) is one
WARNING line, not a traceback; the same line repeated every few seconds is
said once, then again at most every `every` seconds with how many times it
happened meanwhile.
"""

from __future__ import annotations

import logging
import time
from typing import Self


class Repeats:
    """Says each distinct message once per `every` seconds; counts the ones it holds back."""

    def __init__(self, every: float = 300.0) -> None:
        self.every = every
        self._said: dict[str, tuple[float, int]] = {}

    @classmethod
    def for_context(cls, context: object) -> Self:
        """One per context, for the job runner (`Context.part`)."""
        return cls()

    def close(self) -> None:
        self._said.clear()

    def log(
        self,
        logger: logging.Logger,
        level: int,
        message: str,
        *,
        exc_info: BaseException | None = None,
    ) -> None:
        now = time.monotonic()
        last, held = self._said.get(message, (0.0, 0))
        if last and now - last < self.every:
            self._said[message] = (last, held + 1)
            return
        self._said[message] = (now, 0)
        suffix = f" (and {held} more time(s) since it was last logged)" if held else ""
        logger.log(level, "%s%s", message, suffix, exc_info=exc_info)

    def clear(self) -> None:
        """The condition ended: say it again at once if it comes back."""
        self._said.clear()
