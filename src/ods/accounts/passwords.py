"""Argon2id password hashes; hashing runs off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ods.core.errors import InvalidInput

FIRST_START_PASSWORD = "ods1234!"  # noqa: S105 - the documented first-start password
MIN_LENGTH = 8
# zxcvbn's score: 3 is "safely unguessable" (more than 10^8 guesses), what a
# password needs to hold up even if a copy of the database is stolen.
MIN_SCORE = 3
# The estimate looks at this many characters: its cost grows with length, and
# zxcvbn refuses (ValueError) anything longer than 72.
ESTIMATED_CHARACTERS = 72

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


def check_new_password(
    new_password: str, old_password: str | None = None, *, username: str | None = None
) -> None:
    """InvalidInput saying why, for a password that is short, reused or easy to guess.

    As NIST SP 800-63B asks: no rules on character classes, but a check
    against common passwords, words, names, keyboard patterns, repeats,
    sequences and dates (zxcvbn), and against the account's own name.
    """
    if len(new_password) < MIN_LENGTH:
        raise InvalidInput(f"The new password must be at least {MIN_LENGTH} characters long.")
    if new_password == FIRST_START_PASSWORD:
        raise InvalidInput("The new password cannot be the documented first-start password.")
    if old_password is not None and new_password == old_password:
        raise InvalidInput("The new password must differ from the old one.")
    # Imported when needed: its word lists take about 15 MiB, which a process that
    # never sets a password should not carry.
    from zxcvbn import zxcvbn

    context = [word for word in (username, "ods", "admin", "jamf") if word]
    estimate = zxcvbn(new_password[:ESTIMATED_CHARACTERS], user_inputs=context)
    if estimate["score"] < MIN_SCORE:
        feedback = estimate["feedback"]
        why = (feedback["warning"] or "It is too easy to guess.").rstrip(".")
        tips = " ".join(feedback["suggestions"])
        raise InvalidInput(
            f"The new password is too easy to guess: {why[0].lower()}{why[1:]}. "
            + (f"{tips} " if tips else "")
            + "A few unrelated words make a strong password."
        )
