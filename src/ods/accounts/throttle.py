"""Failed-login throttling: per username and address, per address, per account.

Tries from one address are checked one at a time: a try's password check
takes a slow hash, and checking tries side by side let a burst of
concurrent wrong tries all pass the limit together. Queued behind each
other, the first failures are recorded before the next try is checked, so
the limit holds exactly, and right passwords sent at once all get in. Three
limits apply:

- a username from one address (`ODS_LOGIN_MAX_FAILURES`): guessing one
  account's password;
- one address over every username (`ODS_LOGIN_MAX_FAILURES_PER_ADDRESS`):
  spraying a common password across accounts;
- one account's old password at `POST /api/auth/password`, whoever holds its
  token (`ODS_LOGIN_MAX_FAILURES`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Self

from ods.core.errors import TooManyRequests

if TYPE_CHECKING:
    from ods.core.context import Context

Key = tuple[str, ...]
PRUNE_ABOVE = 10_000


class LoginThrottle:
    """Counts failures in a sliding window; past a limit, tries get 429."""

    def __init__(self, max_failures: int, window_seconds: int, max_per_address: int) -> None:
        self.max_failures = max_failures
        self.max_per_address = max_per_address
        self.window = window_seconds
        self._failures: dict[Key, deque[float]] = {}
        self._turns: dict[Key, asyncio.Lock] = {}

    @classmethod
    def for_context(cls, context: Context) -> Self:
        settings = context.settings
        return cls(
            settings.login_max_failures,
            settings.login_lockout_seconds,
            settings.login_max_failures_per_address,
        )

    def close(self) -> None:
        self._failures.clear()

    @asynccontextmanager
    async def turn(self, key: Key) -> AsyncIterator[None]:
        """One try at a time for `key`: its check, its password hash, its outcome."""
        lock = self._turns.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._turns.get(key) is lock:
                del self._turns[key]

    def login_turn(self, address: str) -> AbstractAsyncContextManager[None]:
        return self.turn(("address", address))

    def password_turn(self, user_id: int) -> AbstractAsyncContextManager[None]:
        return self.turn(("password", str(user_id)))

    def _recent(self, key: Key, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def _check(self, limits: list[tuple[Key, int, str]]) -> None:
        now = time.monotonic()
        for key, limit, what in limits:
            failures = self._recent(key, now)
            if len(failures) >= limit:
                retry_after = max(1, int(failures[0] + self.window - now) + 1)
                raise TooManyRequests(
                    f"Too many failed {what}; try again in {retry_after} seconds.", retry_after
                )

    def _fail(self, keys: list[Key]) -> None:
        now = time.monotonic()
        for key in keys:
            self._recent(key, now).append(now)
        if len(self._failures) > PRUNE_ABOVE:
            self._prune(now)

    @staticmethod
    def _login_keys(username: str, address: str) -> tuple[Key, Key]:
        return ("user", username.lower(), address), ("address", address)

    def check_login(self, username: str, address: str) -> None:
        user, everyone = self._login_keys(username, address)
        self._check(
            [
                (user, self.max_failures, f"logins for {username!r}"),
                (everyone, self.max_per_address, "logins from this address"),
            ]
        )

    def login_failed(self, username: str, address: str) -> None:
        self._fail(list(self._login_keys(username, address)))

    def login_succeeded(self, username: str, address: str) -> None:
        """The account's own count starts over; the address keeps what it sprayed."""
        self._failures.pop(self._login_keys(username, address)[0], None)

    def check_password(self, user_id: int) -> None:
        key = ("password", str(user_id))
        self._check([(key, self.max_failures, "tries of this account's password")])

    def password_failed(self, user_id: int) -> None:
        self._fail([("password", str(user_id))])

    def password_succeeded(self, user_id: int) -> None:
        self._failures.pop(("password", str(user_id)), None)

    def _prune(self, now: float) -> None:
        for key in list(self._failures):
            if not self._recent(key, now):
                del self._failures[key]
