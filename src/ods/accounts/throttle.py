"""Failed-login throttling per username and client address."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Self

from ods.core.errors import TooManyRequests

if TYPE_CHECKING:
    from ods.core.context import Context


class LoginThrottle:
    """Counts failures in a sliding window; past the limit, tries get 429."""

    def __init__(self, max_failures: int, window_seconds: int) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self._failures: dict[tuple[str, str], deque[float]] = {}

    @classmethod
    def for_context(cls, context: Context) -> Self:
        settings = context.settings
        return cls(settings.login_max_failures, settings.login_lockout_seconds)

    def close(self) -> None:
        self._failures.clear()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def check(self, username: str, address: str) -> None:
        now = time.monotonic()
        failures = self._recent((username.lower(), address), now)
        if len(failures) >= self.max_failures:
            retry_after = max(1, int(failures[0] + self.window - now) + 1)
            raise TooManyRequests(
                f"Too many failed logins for {username!r}; try again in {retry_after} seconds.",
                retry_after,
            )

    def failed(self, username: str, address: str) -> None:
        now = time.monotonic()
        self._recent((username.lower(), address), now).append(now)
        if len(self._failures) > 10_000:
            self._prune(now)

    def succeeded(self, username: str, address: str) -> None:
        self._failures.pop((username.lower(), address), None)

    def _prune(self, now: float) -> None:
        for key in list(self._failures):
            if not self._recent(key, now):
                del self._failures[key]
