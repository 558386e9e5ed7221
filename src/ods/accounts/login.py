"""Logging in: local accounts, then directory (LDAP) accounts, under one throttle.

A local account is checked against its own password and never against the
directory, so the local admin logs in while the directory is down, and a
directory entry cannot take over a local name. A name with no local account
is looked up in the directory when ODS_LDAP_URL is set; a directory user in a
mapped group gets (or keeps) a user row with `source` ldap and the role of its
groups as they are now.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from ods.accounts.directory import Directory, DirectoryUser, check_username
from ods.accounts.passwords import verify_password
from ods.accounts.schemas import LoginResponse
from ods.accounts.service import DIRECTORY, new_token, user_by_name
from ods.accounts.throttle import LoginThrottle
from ods.core.auth import Role, hash_token
from ods.core.db import Database
from ods.core.errors import Forbidden, Unauthorized, Unavailable
from ods.core.humanize import iso
from ods.core.models import Token, User, utcnow
from ods.events import catalogue
from ods.events.log import record

WRONG = "Wrong username or password."


async def login(
    db: Database,
    throttle: LoginThrottle,
    directory: Directory,
    username: str,
    password: str,
    address: str,
    ttl: dt.timedelta,
) -> LoginResponse:
    check_username(username)
    found: DirectoryUser | None = None
    user: User | None = None
    async with throttle.login_turn(address):
        tried = await throttle.try_login(username, address)
        async with db.session() as session:
            user = await user_by_name(session, username)
        if (user is None and directory.configured) or (user and user.source == DIRECTORY):
            try:
                found = await directory.authenticate(username, password)
            except Unavailable:
                # Nothing was checked: the try does not count against the user.
                await throttle.forgive(tried)
                raise
            user = None
            if found is not None and found.role is not None:
                user = await _directory_user(db, username, found.role)
        elif not await verify_password(user.password_hash if user else None, password):
            user = None
        if user is not None:
            await throttle.login_succeeded(tried, username, address)
    if user is None:
        await _refused(db, username, address, found)
    assert user is not None
    raw = new_token()
    expires = utcnow() + ttl
    async with db.transaction() as session:
        session.add(
            Token(user_id=user.id, token_hash=hash_token(raw), kind="session", expires=expires)
        )
    return LoginResponse(
        token=raw,
        must_change_password=user.must_change_password,
        expires=iso(expires),
        username=user.username,
        role=Role(user.role),
    )


async def _refused(db: Database, username: str, address: str, found: DirectoryUser | None) -> None:
    """Record the failed login and raise why it failed.

    A directory user whose password was right but who is in no mapped group any more
    loses the sessions and API tokens ODS gave it.
    """
    async with db.transaction() as session:
        await record(
            session, catalogue.LoginFailed(username=username, address=address), actor=username
        )
        if found is not None:
            user = await user_by_name(session, username)
            if user is not None and user.source == DIRECTORY:
                await session.execute(delete(Token).where(Token.user_id == user.id))
    if found is None:
        raise Unauthorized(WRONG)
    raise Forbidden(
        "Your directory account is in no group that may use this server "
        "(ODS_LDAP_GROUP_ROLES); ask an admin to add you to one."
    )


async def _directory_user(db: Database, username: str, role: Role) -> User | None:
    """The user row of a directory account, made at its first login, its role brought up
    to date; None when a local account took the name meanwhile."""
    for _ in range(2):
        try:
            async with db.transaction() as session:
                user = await user_by_name(session, username)
                if user is None:
                    user = User(
                        username=username,
                        password_hash=None,
                        role=role.value,
                        must_change_password=False,
                        source=DIRECTORY,
                    )
                    session.add(user)
                    await session.flush()
                    created = catalogue.UserCreated(
                        username=username, role=role, must_change_password=False
                    )
                    await record(session, created, actor=username)
                elif user.source != DIRECTORY:
                    return None
                elif user.role != role.value:
                    user.role = role.value
                    updated = catalogue.UserUpdated(
                        username=user.username,
                        role=role,
                        must_change_password=False,
                        password_reset=False,
                    )
                    await record(session, updated, actor=user.username)
                return user
        except IntegrityError:
            # The same user's first login in another request made the row first.
            continue
    return None
