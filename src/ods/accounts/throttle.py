"""Failed-login throttling: per username and address, per address, per account.

Each try is counted before its password is checked, not after: the check
takes a slow hash, and counting afterwards let a burst of concurrent tries
all pass the limit together. A try that turns out right gives its count
back. Three limits apply:

- a username from one address (`ODS_LOGIN_MAX_FAILURES`): guessing one
  account's password;
- one address over every username (`ODS_LOGIN_MAX_FAILURES_PER_ADDRESS`):
  spraying a common password across accounts;
- one account's old password at `POST /api/auth/password`, whoever holds its
  token (`ODS_LOGIN_MAX_FAILURES`).
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from ods.core.errors import TooManyRequests

if TYPE_CHECKING:
    from ods.core.context import Context

Key = tuple[str, ...]
PRUNE_ABOVE = 10_000


@dataclass(frozen=True)
class Attempt:
    """A try counted ahead of its check: its keys and the moment it was counted."""

    keys: tuple[Key, ...]
    at: float


class LoginThrottle:
    """Counts tries in a sliding window; past a limit, tries get 429."""

    def __init__(self, max_failures: int, window_seconds: int, max_per_address: int) -> None:
        self.max_failures = max_failures
        self.max_per_address = max_per_address
        self.window = window_seconds
        self._tries: dict[Key, deque[float]] = {}

    @classmethod
    def for_context(cls, context: Context) -> Self:
        settings = context.settings
        return cls(
            settings.login_max_failures,
            settings.login_lockout_seconds,
            settings.login_max_failures_per_address,
        )

    def close(self) -> None:
        self._tries.clear()

    def _recent(self, key: Key, now: float) -> deque[float]:
        tries = self._tries.setdefault(key, deque())
        while tries and tries[0] <= now - self.window:
            tries.popleft()
        return tries

    def _reserve(self, limits: list[tuple[Key, int, str]]) -> Attempt:
        """Refuse if any key is at its limit; else count the try on every key. No await
        happens between the check and the count, so concurrent tries cannot slip past."""
        now = time.monotonic()
        for key, limit, what in limits:
            tries = self._recent(key, now)
            if len(tries) >= limit:
                retry_after = max(1, int(tries[0] + self.window - now) + 1)
                raise TooManyRequests(
                    f"Too many failed {what}; try again in {retry_after} seconds.", retry_after
                )
        for key, _, _ in limits:
            self._tries[key].append(now)
        if len(self._tries) > PRUNE_ABOVE:
            self._prune(now)
        return Attempt(tuple(key for key, _, _ in limits), now)

    def login(self, username: str, address: str) -> Attempt:
        """Count a login try ahead of its check, or TooManyRequests."""
        return self._reserve(
            [
                (
                    ("user", username.lower(), address),
                    self.max_failures,
                    f"logins for {username!r}",
                ),
                (("address", address), self.max_per_address, "logins from this address"),
            ]
        )

    def password_check(self, user_id: int) -> Attempt:
        """Count a try of an account's old password ahead of its check, or TooManyRequests."""
        return self._reserve(
            [(("password", str(user_id)), self.max_failures, "tries of this account's password")]
        )

    def succeeded(self, attempt: Attempt) -> None:
        """The try was right: it does not count, and the account's own count starts over."""
        for key in attempt.keys:
            tries = self._tries.get(key)
            if tries is None:
                continue
            if key[0] == "address":
                with contextlib.suppress(ValueError):
                    tries.remove(attempt.at)
            else:
                tries.clear()

    def _prune(self, now: float) -> None:
        for key in list(self._tries):
            if not self._recent(key, now):
                del self._tries[key]
