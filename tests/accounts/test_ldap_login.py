"""Directory users log in through /api/auth/login against a real slapd, beside local accounts."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ods.accounts import service
from ods.core import migrate
from ods.core.config import Settings, load_settings, normalise_database_url
from ods.core.context import Context
from ods.core.db import create_engine
from ods.core.errors import Conflict
from tests.helpers.api import (
    NEW_PASSWORD,
    TEST_DATABASE_KEY,
    assert_error,
    bearer,
    client_for,
    login,
    started,
)
from tests.helpers.services import free_port
from tests.helpers.slapd import (
    ADMINS,
    GROUP_ROLES,
    PACKAGERS,
    PEOPLE,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Slapd,
    slapd,
)

PASSWORD = "directory passphrase"


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def with_ldap(settings: Settings, server: Slapd, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ldap_url": server.url,
        "ldap_starttls": True,
        "ldap_ca_file": server.ca_file,
        "ldap_bind_dn": SERVICE_DN,
        "ldap_bind_password": SERVICE_PASSWORD,
        "ldap_user_base": PEOPLE,
        "ldap_group_roles": GROUP_ROLES,
        "ldap_timeout": 2,
        # The local admin starts with a strong password: no first-start change needed.
        "admin_password": NEW_PASSWORD,
    }
    return settings.model_copy(update=values | overrides)


@pytest.fixture
async def sqlite_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings on a fresh SQLite database, for the tests about the directory rather than
    the database (those about user rows run on every backend)."""
    monkeypatch.delenv("ODS_CONF", raising=False)
    url = f"sqlite:///{tmp_path / 'ods.db'}"
    engine = create_engine(normalise_database_url(url))
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    return load_settings(
        data_dir=tmp_path / "data",
        database_url=url,
        database_key=TEST_DATABASE_KEY,
        secret_key="test-secret",
    )


@pytest.fixture
async def ldap_app(settings: Settings, slapd_server: Slapd) -> AsyncIterator[FastAPI]:
    async with started(with_ldap(settings, slapd_server)) as application:
        yield application


@pytest.fixture
async def ldap_admin(ldap_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The local admin."""
    async with client_for(ldap_app) as client:
        client.headers.update(bearer(await login(client, "admin", NEW_PASSWORD)))
        yield client


async def log_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"username": username, "password": password})


async def test_a_directory_user_logs_in_and_is_listed_as_ldap(
    ldap_app: FastAPI, ldap_admin: httpx.AsyncClient, slapd_server: Slapd
) -> None:
    uid = unique("alice")
    slapd_server.add_user(uid, PASSWORD, (ADMINS, PACKAGERS))
    async with client_for(ldap_app) as client:
        answer = await log_in(client, uid, PASSWORD)
        assert answer.status_code == 200, answer.text
        assert answer.json()["role"] == "admin"
        assert answer.json()["must_change_password"] is False
        me = await client.get("/api/auth/me", headers=bearer(answer.json()["token"]))
        assert me.json()["source"] == "ldap"
        # Its token works like a local one.
        about = await client.get("/api/admin/about", headers=bearer(answer.json()["token"]))
        assert about.status_code == 200
    users = {
        user["username"]: user
        for user in (await ldap_admin.get("/api/admin/users")).json()["items"]
    }
    assert users[uid]["source"] == "ldap"
    assert users[uid]["role"] == "admin"
    assert users["admin"]["source"] == "local"
    created = await ldap_admin.get("/api/admin/events", params={"kind": "user.created"})
    assert [event["actor"] for event in created.json()["items"]] == [uid]


async def test_the_role_follows_the_directory_at_every_login(
    ldap_app: FastAPI, ldap_admin: httpx.AsyncClient, slapd_server: Slapd
) -> None:
    uid = unique("bob")
    dn = slapd_server.add_user(uid, PASSWORD, (PACKAGERS,))
    async with client_for(ldap_app) as client:
        first = await log_in(client, uid, PASSWORD)
        assert first.json()["role"] == "package_manager"
        slapd_server.set_groups(dn, (ADMINS,))
        second = await log_in(client, uid, PASSWORD)
        assert second.json()["role"] == "admin"
        me = await client.get("/api/auth/me", headers=bearer(first.json()["token"]))
        assert me.json()["role"] == "admin"
        slapd_server.set_groups(dn, ())
        refused = await log_in(client, uid, PASSWORD)
        assert_error(refused, 403, "forbidden", "no group", "ODS_LDAP_GROUP_ROLES")
        # Out of every mapped group: the sessions ODS gave it end.
        gone = await client.get("/api/auth/me", headers=bearer(second.json()["token"]))
        assert_error(gone, 401, "unauthorized")


async def test_refusals_and_injection_attempts(
    sqlite_settings: Settings, slapd_server: Slapd
) -> None:
    uid = unique("carol")
    slapd_server.add_user(uid, PASSWORD, (ADMINS,))
    application = started(with_ldap(sqlite_settings, slapd_server))
    async with application as ldap_app, client_for(ldap_app) as client:
        assert_error(await log_in(client, uid, "wrong password"), 401, "unauthorized", "Wrong")
        assert_error(await log_in(client, unique("nobody"), PASSWORD), 401, "unauthorized")
        for username in ("*", uid[:-2] + "*", "*)(uid=*", f"{uid})(uid=*"):
            assert_error(await log_in(client, username, PASSWORD), 401, "unauthorized")
        assert_error(await log_in(client, f"{uid}\x00", PASSWORD), 400, "invalid_input", "control")
        assert_error(await log_in(client, uid, ""), 422, "invalid_input")


async def test_directory_users_have_no_password_in_ods(
    ldap_app: FastAPI, ldap_admin: httpx.AsyncClient, slapd_server: Slapd
) -> None:
    uid = unique("dave")
    slapd_server.add_user(uid, PASSWORD, (PACKAGERS,))
    async with client_for(ldap_app) as client:
        token = (await log_in(client, uid, PASSWORD)).json()["token"]
        change = await client.post(
            "/api/auth/password",
            json={"old_password": PASSWORD, "new_password": "another long passphrase"},
            headers=bearer(token),
        )
        assert_error(change, 403, "forbidden", "directory", "source ldap")
    users = (await ldap_admin.get("/api/admin/users")).json()["items"]
    user_id = next(user["id"] for user in users if user["username"] == uid)
    for body in ({"password": "an admin's reset passphrase"}, {"must_change_password": True}):
        refused = await ldap_admin.patch(f"/api/admin/users/{user_id}", json=body)
        assert_error(refused, 409, "conflict", "directory")
    context = ldap_app.state.context
    assert isinstance(context, Context)
    with pytest.raises(Conflict, match="directory"):
        await service.set_password(context.db, uid, "a command line passphrase")


async def test_a_local_account_is_never_checked_against_the_directory(
    ldap_app: FastAPI, ldap_admin: httpx.AsyncClient, slapd_server: Slapd
) -> None:
    uid = unique("erin")
    slapd_server.add_user(uid, PASSWORD, (ADMINS,))
    local = {"username": uid, "password": "the local passphrase", "role": "read_only"}
    made = await ldap_admin.post("/api/admin/users", json=local | {"must_change_password": False})
    assert made.status_code == 201, made.text
    async with client_for(ldap_app) as client:
        assert_error(await log_in(client, uid, PASSWORD), 401, "unauthorized")
        answer = await log_in(client, uid, "the local passphrase")
        assert answer.json()["role"] == "read_only"


async def test_the_local_admin_logs_in_while_the_directory_is_stopped(
    sqlite_settings: Settings,
) -> None:
    uid = unique("frank")
    async with contextlib.AsyncExitStack() as stack:
        with slapd() as own:
            own.add_user(uid, PASSWORD, (ADMINS,))
            application = await stack.enter_async_context(started(with_ldap(sqlite_settings, own)))
            client = await stack.enter_async_context(client_for(application))
            assert (await log_in(client, uid, PASSWORD)).status_code == 200
        # That slapd is stopped now; the server keeps pointing at it.
        assert (await log_in(client, "admin", NEW_PASSWORD)).status_code == 200
        down = await log_in(client, uid, PASSWORD)
        assert_error(down, 503, "unavailable", "directory", "local accounts still can")
        unknown = await log_in(client, unique("nobody"), PASSWORD)
        assert_error(unknown, 503, "unavailable")


async def test_failed_directory_logins_are_throttled(
    sqlite_settings: Settings, slapd_server: Slapd
) -> None:
    settings = sqlite_settings
    uid = unique("grace")
    slapd_server.add_user(uid, PASSWORD, (PACKAGERS,))
    tight = with_ldap(settings, slapd_server, login_max_failures=3, login_lockout_seconds=60)
    async with started(tight) as application, client_for(application) as client:
        for _ in range(3):
            assert_error(await log_in(client, uid, "guess"), 401, "unauthorized")
        assert_error(await log_in(client, uid, PASSWORD), 429, "too_many_requests")
    nothing_there = f"ldap://127.0.0.1:{free_port()}"
    down = with_ldap(
        settings, slapd_server, ldap_url=nothing_there, ldap_starttls=False, login_max_failures=1
    )
    async with started(down) as application, client_for(application, "192.0.2.7") as client:
        # The directory decided nothing: those tries do not count.
        for _ in range(3):
            assert_error(await log_in(client, uid, PASSWORD), 503, "unavailable")
