"""Who is calling: roles, the principal behind a bearer token, and checking a token.

Every feature authorises its callers with these; `ods.web.deps` wraps them
as FastAPI dependencies. Accounts (`ods.accounts`) issue and revoke the
tokens checked here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from ods.core.db import Database
from ods.core.errors import Forbidden, Unauthorized, one_line
from ods.core.models import Token, User, utcnow

LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
LAST_USED_WARNING_SECONDS = 60.0
_last_warning = -LAST_USED_WARNING_SECONDS

log = logging.getLogger(__name__)


class Role(StrEnum):
    ADMIN = "admin"
    PACKAGE_MANAGER = "package_manager"
    READ_ONLY = "read_only"

    @property
    def rank(self) -> int:
        return {"read_only": 0, "package_manager": 1, "admin": 2}[self.value]


class Principal(BaseModel):
    """Who is calling: the user behind a bearer token."""

    user_id: int
    username: str
    role: Role
    must_change_password: bool
    token_id: int
    token_kind: str
    # "local", or "ldap" for a directory account (no password in ODS).
    source: str = "local"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


async def authenticate(db: Database, raw: str) -> Principal:
    """The principal behind a bearer token, or Unauthorized with the reason."""
    async with db.session() as session:
        row = (
            await session.execute(
                select(Token, User)
                .join(User, User.id == Token.user_id)
                .where(Token.token_hash == hash_token(raw))
            )
        ).one_or_none()
    if row is None:
        raise Unauthorized("The token is not valid (revoked, or never issued); log in again.")
    token, user = row
    now = utcnow()
    if token.expires is not None and token.expires <= now:
        raise Unauthorized("The token has expired; log in again.")
    if token.last_used is None or now - token.last_used >= LAST_USED_RESOLUTION:
        await _note_use(db, token.id, now)
    return Principal(
        user_id=user.id,
        username=user.username,
        role=Role(user.role),
        must_change_password=user.must_change_password,
        token_id=token.id,
        token_kind=token.kind,
        source=user.source,
    )


async def _note_use(db: Database, token_id: int, now: dt.datetime) -> None:
    """Record when a token was last used; best effort. A read must not fail because the
    database refuses a write (a full disk, a read-only replica): it is logged, at most
    once a minute."""
    global _last_warning
    try:
        async with db.transaction() as session:
            await session.execute(update(Token).where(Token.id == token_id).values(last_used=now))
    except (SQLAlchemyError, OSError) as exc:
        if time.monotonic() - _last_warning >= LAST_USED_WARNING_SECONDS:
            _last_warning = time.monotonic()
            log.warning("could not record when a token was last used: %s", one_line(exc))


async def still_valid(db: Database, principal: Principal) -> bool:
    """Whether the token a principal came with still stands: not revoked or expired, its
    user still there with the same role. For long requests, such as the event stream."""
    async with db.session() as session:
        row = (
            await session.execute(
                select(Token.expires, User.role)
                .join(User, User.id == Token.user_id)
                .where(Token.id == principal.token_id)
            )
        ).one_or_none()
    if row is None:
        return False
    expires, role = row
    return (expires is None or expires > utcnow()) and role == principal.role.value


def require_role(principal: Principal, role: Role) -> None:
    if principal.role.rank < role.rank:
        raise Forbidden(f"This needs the {role.value} role; you are {principal.role.value}.")
