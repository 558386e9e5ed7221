"""Argon2id password hashes; hashing runs off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ods.core.errors import InvalidInput

FIRST_START_PASSWORD = "ods1234!"  # noqa: S105 - the documented first-start password
MIN_LENGTH = 8

_hasher = PasswordHasher()
# Verified against when a user does not exist, so timing does not reveal usernames.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def check_new_password(new_password: str, old_password: str | None = None) -> None:
    if len(new_password) < MIN_LENGTH:
        raise InvalidInput(f"The new password must be at least {MIN_LENGTH} characters long.")
    if new_password == FIRST_START_PASSWORD:
        raise InvalidInput("The new password cannot be the documented first-start password.")
    if old_password is not None and new_password == old_password:
        raise InvalidInput("The new password must differ from the old one.")
