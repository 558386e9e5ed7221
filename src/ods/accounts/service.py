"""Accounts: the first-start admin, logins, bearer tokens, users and API tokens."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ods.accounts.passwords import (
    FIRST_START_PASSWORD,
    check_new_password,
    hash_password,
    verify_password,
)
from ods.accounts.schemas import (
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
    UserUpdate,
    iso_or_none,
)
from ods.accounts.throttle import LoginThrottle
from ods.core.auth import Principal, Role, hash_token
from ods.core.db import Database, get_row
from ods.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from ods.core.humanize import iso, timestamp
from ods.core.models import Token, User, utcnow
from ods.events import catalogue
from ods.events.log import record

TOKEN_PREFIX = "ods_"  # noqa: S105 - a prefix, not a secret
# users.source of an account the directory holds (docs/ldap.md).
DIRECTORY = "ldap"


def directory_account(username: str) -> str:
    """Why a directory account's password cannot be set here."""
    return (
        f"{username!r} logs in through the directory (source ldap): its password is "
        "changed in the directory, and its role follows its directory groups at every login."
    )


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        role=Role(user.role),
        must_change_password=user.must_change_password,
        created=iso(user.created),
        created_ts=timestamp(user.created),
        source="ldap" if user.source == DIRECTORY else "local",
    )


def token_out(token: Token) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        kind=token.kind,
        created=iso(token.created),
        expires=iso_or_none(token.expires),
        last_used=iso_or_none(token.last_used),
    )


async def user_by_name(session: AsyncSession, username: str) -> User | None:
    """Usernames match whatever their case, alike on SQLite, MySQL and PostgreSQL."""
    query = select(User).where(func.lower(User.username) == username.lower()).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


def _meets_policy(password: str) -> bool:
    try:
        check_new_password(password)
    except InvalidInput:
        return False
    return True


async def ensure_admin(db: Database, admin_password: str | None) -> None:
    """On first start, create `admin` with ODS_ADMIN_PASSWORD or the documented default.

    The documented password, or one the password policy refuses, must be changed
    at first login whether it came from ODS_ADMIN_PASSWORD or not.
    """
    count_users = select(func.count()).select_from(User)
    async with db.session() as session:
        if await session.scalar(count_users):
            return
    password = admin_password or FIRST_START_PASSWORD
    # Hashed outside the write transaction, which stays short; checked again inside it.
    password_hash = await hash_password(password)
    async with db.transaction() as session:
        if await session.scalar(count_users):
            return
        session.add(
            User(
                username="admin",
                password_hash=password_hash,
                role=Role.ADMIN.value,
                must_change_password=not _meets_policy(password),
            )
        )


async def create_user(db: Database, body: UserCreate, actor: str | None = None) -> UserOut:
    check_new_password(body.password, username=body.username)
    password_hash = await hash_password(body.password)
    async with db.transaction() as session:
        if await user_by_name(session, body.username):
            raise Conflict(f"A user named {body.username!r} exists already.")
        user = User(
            username=body.username,
            password_hash=password_hash,
            role=body.role.value,
            must_change_password=body.must_change_password,
        )
        session.add(user)
        try:
            await session.flush()
        except IntegrityError:
            # Another request created the same name between the check and the insert.
            raise Conflict(f"A user named {body.username!r} exists already.") from None
        created = catalogue.UserCreated(
            username=user.username,
            role=body.role,
            must_change_password=body.must_change_password,
        )
        await record(session, created, actor=actor)
        return user_out(user)


async def list_users(db: Database) -> list[UserOut]:
    async with db.session() as session:
        users = (await session.execute(select(User).order_by(User.username))).scalars()
        return [user_out(user) for user in users]


async def get_user(db: Database, user_id: int) -> UserOut:
    async with db.session() as session:
        user = await get_row(session, User, user_id)
        if user is None:
            raise NotFound(f"No user with id {user_id}.")
        return user_out(user)


async def _admins_left(session: AsyncSession, excluding: int) -> int:
    query = select(func.count()).where(User.role == Role.ADMIN.value, User.id != excluding)
    return int(await session.scalar(query) or 0)


async def update_user(db: Database, user_id: int, body: UserUpdate, actor: str) -> UserOut:
    password_hash = None
    if body.password is not None:
        check_new_password(body.password)
        password_hash = await hash_password(body.password)
    async with db.transaction() as session:
        user = await get_row(session, User, user_id)
        if user is None:
            raise NotFound(f"No user with id {user_id}.")
        if user.source == DIRECTORY and body.model_fields_set:
            raise Conflict(
                directory_account(user.username)
                + " Delete the user to end its sessions and tokens now."
            )
        demoted = body.role is not None and body.role != Role.ADMIN
        if demoted and user.role == Role.ADMIN.value and not await _admins_left(session, user.id):
            raise Conflict("This is the last admin; make another user admin first.")
        if body.role is not None:
            user.role = body.role.value
        if password_hash is not None:
            user.password_hash = password_hash
            user.must_change_password = True
            await session.execute(delete(Token).where(Token.user_id == user.id))
        if body.must_change_password is not None:
            user.must_change_password = body.must_change_password
        updated = catalogue.UserUpdated(
            username=user.username,
            role=Role(user.role),
            must_change_password=user.must_change_password,
            password_reset=password_hash is not None,
        )
        await record(session, updated, actor=actor)
        return user_out(user)


async def delete_user(db: Database, user_id: int, principal: Principal) -> None:
    if user_id == principal.user_id:
        raise Conflict("You cannot delete your own account.")
    async with db.transaction() as session:
        user = await get_row(session, User, user_id)
        if user is None:
            raise NotFound(f"No user with id {user_id}.")
        if user.role == Role.ADMIN.value and not await _admins_left(session, user.id):
            raise Conflict("This is the last admin; make another user admin first.")
        await session.delete(user)
        await record(
            session,
            catalogue.UserDeleted(username=user.username, role=Role(user.role)),
            actor=principal.username,
        )


async def set_password(db: Database, username: str, password: str) -> None:
    """Set a password from the command line (no old password needed)."""
    check_new_password(password, username=username)
    password_hash = await hash_password(password)
    async with db.transaction() as session:
        user = await user_by_name(session, username)
        if user is None:
            raise NotFound(f"No user named {username!r}.")
        if user.source == DIRECTORY:
            raise Conflict(directory_account(user.username))
        user.password_hash = password_hash
        user.must_change_password = False
        await session.execute(delete(Token).where(Token.user_id == user.id))


async def change_password(
    db: Database,
    throttle: LoginThrottle,
    principal: Principal,
    old_password: str,
    new_password: str,
    address: str,
) -> None:
    async with db.session() as session:
        user = await session.get(User, principal.user_id)
    if user is None:
        raise Unauthorized("This account no longer exists.")
    if user.source == DIRECTORY:
        raise Forbidden(directory_account(user.username))
    check_new_password(new_password, old_password, username=principal.username)
    async with throttle.password_turn(user.id):
        tried = await throttle.try_password(user.id)
        right = await verify_password(user.password_hash, old_password)
        if right:
            await throttle.password_succeeded(tried, user.id)
    if not right:
        async with db.transaction() as session:
            failed = catalogue.PasswordCheckFailed(username=user.username, address=address)
            await record(session, failed, actor=principal.username)
        raise Forbidden("The old password is wrong.")
    password_hash = await hash_password(new_password)
    async with db.transaction() as session:
        stored = await session.get(User, principal.user_id)
        assert stored is not None
        stored.password_hash = password_hash
        stored.must_change_password = False
        # Other login sessions end; this one and API tokens stay.
        await session.execute(
            delete(Token).where(
                Token.user_id == principal.user_id,
                Token.kind == "session",
                Token.id != principal.token_id,
            )
        )
        await record(
            session,
            catalogue.UserPasswordChanged(username=stored.username),
            actor=principal.username,
        )


async def logout(db: Database, principal: Principal) -> None:
    async with db.transaction() as session:
        await session.execute(delete(Token).where(Token.id == principal.token_id))


async def create_api_token(db: Database, principal: Principal, body: TokenCreate) -> TokenCreated:
    raw = new_token()
    expires = utcnow() + dt.timedelta(days=body.expires_days) if body.expires_days else None
    async with db.transaction() as session:
        token = Token(
            user_id=principal.user_id,
            token_hash=hash_token(raw),
            kind="api",
            name=body.name,
            expires=expires,
        )
        session.add(token)
        await session.flush()
        created = catalogue.TokenCreated(
            name=body.name,
            username=principal.username,
            expires=iso_or_none(expires),
        )
        await record(session, created, actor=principal.username)
        return TokenCreated(token=raw, **token_out(token).model_dump())


async def list_tokens(db: Database, principal: Principal) -> list[TokenOut]:
    async with db.session() as session:
        tokens = await session.execute(
            select(Token).where(Token.user_id == principal.user_id).order_by(Token.id)
        )
        return [token_out(token) for token in tokens.scalars()]


async def revoke_token(db: Database, principal: Principal, token_id: int) -> None:
    async with db.transaction() as session:
        token = await get_row(session, Token, token_id)
        mine = token is not None and token.user_id == principal.user_id
        if token is None or not (mine or principal.role == Role.ADMIN):
            raise NotFound(f"No token with id {token_id}.")
        owner = await session.get(User, token.user_id)
        assert owner is not None
        revoked = catalogue.TokenRevoked(
            name=token.name,
            username=owner.username,
            token_kind="session" if token.kind == "session" else "api",
        )
        await session.delete(token)
        await record(session, revoked, actor=principal.username)
