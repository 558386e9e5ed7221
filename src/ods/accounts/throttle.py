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

The counts live in the database, so every process of a site (several
`ods serve` behind one Nginx) counts the same tries. A try is counted
before its password is checked, and forgiven when it was right: tries that
race each other from different processes are all counted, and the limit
holds across them too.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from sqlalchemy import delete, func, select

from ods.core.errors import TooManyRequests
from ods.core.models import LoginFailure

if TYPE_CHECKING:
    from ods.core.context import Context
    from ods.core.db import Database

Key = tuple[str, ...]


def digest(key: Key) -> str:
    return hashlib.sha256("\0".join(key).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Limit:
    key: Key
    limit: int
    what: str  # "logins for 'admin'": what there were too many failed ones of


@dataclass(frozen=True)
class Try:
    """A try counted before its password was checked: the rows to forgive if it was right."""

    ids: tuple[int, ...]


class LoginThrottle:
    """Counts failures in a sliding window; past a limit, tries get 429."""

    def __init__(
        self, db: Database, max_failures: int, window_seconds: int, max_per_address: int
    ) -> None:
        self.db = db
        self.max_failures = max_failures
        self.max_per_address = max_per_address
        self.window = window_seconds
        self._turns: dict[Key, asyncio.Lock] = {}

    @classmethod
    def for_context(cls, context: Context) -> Self:
        settings = context.settings
        return cls(
            context.db,
            settings.login_max_failures,
            settings.login_lockout_seconds,
            settings.login_max_failures_per_address,
        )

    def close(self) -> None:
        self._turns.clear()

    @asynccontextmanager
    async def turn(self, key: Key) -> AsyncIterator[None]:
        """One try at a time for `key` in this process: its check, its password hash, its
        outcome (so that right passwords sent at once from one address all get in)."""
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

    async def _count(self, limits: list[Limit]) -> Try:
        """Count a try against each limit; TooManyRequests, and not counted, past one.

        The try is committed before the counts are read, so tries racing each other in
        other processes see it, as it sees theirs.
        """
        now = int(time.time() * 1000)
        since = now - self.window * 1000
        keys = [digest(limit.key) for limit in limits]
        async with self.db.transaction() as session:
            await session.execute(delete(LoginFailure).where(LoginFailure.at_ms <= since))
            rows = [LoginFailure(key=key, at_ms=now) for key in keys]
            session.add_all(rows)
            await session.flush()
            tried = Try(tuple(row.id for row in rows))
        refusal: TooManyRequests | None = None
        async with self.db.session() as session:
            for key, limit in zip(keys, limits, strict=True):
                count, oldest = (
                    await session.execute(
                        select(func.count(), func.min(LoginFailure.at_ms)).where(
                            LoginFailure.key == key, LoginFailure.at_ms > since
                        )
                    )
                ).one()
                if count > limit.limit:
                    retry_after = max(1, (int(oldest) - since) // 1000 + 1)
                    refusal = TooManyRequests(
                        f"Too many failed {limit.what}; try again in {retry_after} seconds.",
                        retry_after,
                    )
                    break
        if refusal is not None:
            await self._forgive(tried.ids)
            raise refusal
        return tried

    async def _forgive(self, ids: list[int] | tuple[int, ...], *keys: Key) -> None:
        async with self.db.transaction() as session:
            await session.execute(delete(LoginFailure).where(LoginFailure.id.in_(ids)))
            if keys:
                await session.execute(
                    delete(LoginFailure).where(LoginFailure.key.in_([digest(k) for k in keys]))
                )

    @staticmethod
    def _login_keys(username: str, address: str) -> tuple[Key, Key]:
        return ("user", username.lower(), address), ("address", address)

    async def try_login(self, username: str, address: str) -> Try:
        """Count a login try as failed until `login_succeeded` says otherwise."""
        user, everyone = self._login_keys(username, address)
        return await self._count(
            [
                Limit(user, self.max_failures, f"logins for {username!r}"),
                Limit(everyone, self.max_per_address, "logins from this address"),
            ]
        )

    async def login_succeeded(self, tried: Try, username: str, address: str) -> None:
        """The try is forgiven and the account's own count starts over; the address keeps
        what it sprayed."""
        await self._forgive(tried.ids, self._login_keys(username, address)[0])

    async def forgive(self, tried: Try) -> None:
        """The try decided nothing (the directory did not answer): it does not count."""
        await self._forgive(tried.ids)

    async def try_password(self, user_id: int) -> Try:
        key = ("password", str(user_id))
        return await self._count(
            [Limit(key, self.max_failures, "tries of this account's password")]
        )

    async def password_succeeded(self, tried: Try, user_id: int) -> None:
        await self._forgive(tried.ids, ("password", str(user_id)))
