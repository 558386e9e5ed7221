"""Login, the first-start password, tokens (session and API), throttling and roles."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from ods.core.config import Settings
from ods.core.context import Context
from ods.core.models import Token, utcnow
from tests.helpers.accounts import FIRST_START, add_user
from tests.helpers.api import NEW_PASSWORD, assert_error, bearer, client_for, login, started


def context_of(app: FastAPI) -> Context:
    context: Context = app.state.context
    return context


# Login


async def test_login_answers_the_documented_fields(client: httpx.AsyncClient) -> None:
    before = utcnow()
    response = await client.post("/api/auth/login", json=FIRST_START)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"token", "must_change_password", "expires", "username", "role"}
    assert body["must_change_password"] is True
    assert body["username"] == "admin"
    assert body["role"] == "admin"
    assert body["token"].startswith("ods_")
    assert len(body["token"]) > 32
    expires = dt.datetime.fromisoformat(body["expires"])
    assert (
        dt.timedelta(hours=11, minutes=59) <= expires - before <= dt.timedelta(hours=12, seconds=5)
    )


async def test_token_ttl_follows_the_setting(settings: Settings) -> None:
    shorter = settings.model_copy(update={"token_ttl_hours": 1})
    async with started(shorter) as application, client_for(application) as c:
        response = await c.post("/api/auth/login", json=FIRST_START)
    expires = dt.datetime.fromisoformat(response.json()["expires"])
    assert abs(expires - utcnow() - dt.timedelta(hours=1)) < dt.timedelta(seconds=10)


async def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: httpx.AsyncClient,
) -> None:
    wrong = await client.post("/api/auth/login", json={"username": "admin", "password": "nope"})
    unknown = await client.post(
        "/api/auth/login", json={"username": "nobody", "password": "ods1234!"}
    )
    wrong_body = assert_error(wrong, 401, "unauthorized")
    unknown_body = assert_error(unknown, 401, "unauthorized")
    assert wrong_body == unknown_body
    assert wrong_body["message"] == "Wrong username or password."
    assert wrong.headers["WWW-Authenticate"] == unknown.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "body",
    [
        {"username": "admin"},
        {"password": "ods1234!"},
        {"username": "", "password": "ods1234!"},
        {"username": "admin", "password": "ods1234!", "remember": True},
    ],
)
async def test_malformed_login_is_invalid_input(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    assert_error(await client.post("/api/auth/login", json=body), 422, "invalid_input")


async def test_failed_login_is_recorded_as_an_event(admin_client: httpx.AsyncClient) -> None:
    await admin_client.post("/api/auth/login", json={"username": "admin", "password": "wrong!!"})
    events = await admin_client.get("/api/admin/events", params={"kind": "login.failed"})
    assert events.status_code == 200
    items = events.json()["items"]
    assert len(items) == 1
    assert items[0]["actor"] == "admin"
    assert "wrong!!" not in items[0]["message"]


async def test_usernames_are_matched_without_regard_to_case(
    admin_client: httpx.AsyncClient,
) -> None:
    await add_user(admin_client, "Alice", "read_only")
    response = await admin_client.post(
        "/api/auth/login", json={"username": "alice", "password": "user passphrase"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "Alice"


# The first-start password


async def test_first_start_password_must_be_changed_before_anything_else(
    client: httpx.AsyncClient,
) -> None:
    token = await login(client, "admin", "ods1234!")
    refused = await client.get("/api/admin/about", headers=bearer(token))
    body = assert_error(refused, 403, "password_change_required")
    assert "/api/auth/password" in body["message"]

    me = await client.get("/api/auth/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json() == {
        "id": me.json()["id"],
        "username": "admin",
        "role": "admin",
        "must_change_password": True,
    }

    changed = await client.post(
        "/api/auth/password",
        json={"old_password": "ods1234!", "new_password": NEW_PASSWORD},
        headers=bearer(token),
    )
    assert changed.status_code == 204
    assert changed.content == b""

    assert (await client.get("/api/admin/about", headers=bearer(token))).status_code == 200
    me = await client.get("/api/auth/me", headers=bearer(token))
    assert me.json()["must_change_password"] is False

    again = await client.post(
        "/api/auth/login", json={"username": "admin", "password": NEW_PASSWORD}
    )
    assert again.json()["must_change_password"] is False
    old = await client.post("/api/auth/login", json=FIRST_START)
    assert_error(old, 401, "unauthorized")


async def test_admin_password_setting_skips_the_forced_change(settings: Settings) -> None:
    chosen = settings.model_copy(update={"admin_password": "chosen at install time"})
    async with started(chosen) as application, client_for(application) as c:
        response = await c.post(
            "/api/auth/login",
            json={"username": "admin", "password": "chosen at install time"},
        )
        assert response.status_code == 200
        assert response.json()["must_change_password"] is False
        about = await c.get("/api/admin/about", headers=bearer(response.json()["token"]))
        assert about.status_code == 200
        assert_error(await c.post("/api/auth/login", json=FIRST_START), 401, "unauthorized")


async def test_admin_password_setting_equal_to_the_documented_one_still_forces_a_change(
    settings: Settings,
) -> None:
    documented = settings.model_copy(update={"admin_password": "ods1234!"})
    async with started(documented) as application, client_for(application) as c:
        response = await c.post("/api/auth/login", json=FIRST_START)
        assert response.json()["must_change_password"] is True


async def test_admin_password_setting_that_fails_the_policy_forces_a_change(
    settings: Settings,
) -> None:
    weak = settings.model_copy(update={"admin_password": "short"})
    async with started(weak) as application, client_for(application) as c:
        response = await c.post("/api/auth/login", json={"username": "admin", "password": "short"})
        assert response.json()["must_change_password"] is True


async def test_admin_password_setting_only_matters_at_first_start(settings: Settings) -> None:
    async with started(settings) as application, client_for(application) as c:
        await login(c, "admin", "ods1234!")
    later = settings.model_copy(update={"admin_password": "set after first start"})
    async with started(later) as application, client_for(application) as c:
        response = await c.post("/api/auth/login", json=FIRST_START)
        assert response.status_code == 200
        assert response.json()["must_change_password"] is True


# Password changes


@pytest.mark.parametrize(
    ("new_password", "says"),
    [
        ("short", "at least 8 characters"),
        ("ods1234!", "first-start password"),
    ],
)
async def test_password_policy(client: httpx.AsyncClient, new_password: str, says: str) -> None:
    token = await login(client, "admin", "ods1234!")
    response = await client.post(
        "/api/auth/password",
        json={"old_password": "ods1234!", "new_password": new_password},
        headers=bearer(token),
    )
    assert says in assert_error(response, 400, "invalid_input")["message"]
    still = await client.get("/api/admin/about", headers=bearer(token))
    assert_error(still, 403, "password_change_required")


async def test_new_password_must_differ_from_the_old(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.post(
        "/api/auth/password",
        json={"old_password": NEW_PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert "differ" in assert_error(response, 400, "invalid_input")["message"]


async def test_wrong_old_password_changes_nothing(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.post(
        "/api/auth/password",
        json={"old_password": "not the password", "new_password": "another passphrase"},
    )
    assert "old password" in assert_error(response, 403, "forbidden")["message"]
    await login(admin_client, "admin", NEW_PASSWORD)
    refused = await admin_client.post(
        "/api/auth/login", json={"username": "admin", "password": "another passphrase"}
    )
    assert_error(refused, 401, "unauthorized")


async def test_password_change_ends_other_sessions_but_keeps_this_one_and_api_tokens(
    admin_client: httpx.AsyncClient,
) -> None:
    other_session = await login(admin_client, "admin", NEW_PASSWORD)
    created = await admin_client.post("/api/admin/tokens", json={"name": "CI"})
    api_token = created.json()["token"]
    changed = await admin_client.post(
        "/api/auth/password",
        json={"old_password": NEW_PASSWORD, "new_password": "the next passphrase"},
    )
    assert changed.status_code == 204
    assert (await admin_client.get("/api/auth/me")).status_code == 200
    gone = await admin_client.get("/api/auth/me", headers=bearer(other_session))
    assert_error(gone, 401, "unauthorized")
    kept = await admin_client.get("/api/admin/about", headers=bearer(api_token))
    assert kept.status_code == 200


# Tokens


async def test_logout_revokes_the_token(admin_client: httpx.AsyncClient) -> None:
    assert (await admin_client.post("/api/auth/logout")).status_code == 204
    response = await admin_client.get("/api/auth/me")
    assert "revoked" in assert_error(response, 401, "unauthorized")["message"]
    assert_error(await admin_client.post("/api/auth/logout"), 401, "unauthorized")


async def test_logout_leaves_other_sessions_alone(admin_client: httpx.AsyncClient) -> None:
    other = await login(admin_client, "admin", NEW_PASSWORD)
    assert (await admin_client.post("/api/auth/logout")).status_code == 204
    assert (await admin_client.get("/api/auth/me", headers=bearer(other))).status_code == 200


async def test_expired_token_is_refused(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    db = context_of(app).db
    async with db.transaction() as session:
        await session.execute(update(Token).values(expires=utcnow() - dt.timedelta(seconds=1)))
    response = await admin_client.get("/api/admin/about")
    assert "expired" in assert_error(response, 401, "unauthorized")["message"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_tokens_are_stored_as_hashes(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    raw = admin_client.headers["Authorization"].removeprefix("Bearer ")
    async with context_of(app).db.session() as session:
        rows = (await session.execute(select(Token))).scalars().all()
    hashes = {row.token_hash for row in rows}
    assert hashlib.sha256(raw.encode()).hexdigest() in hashes
    assert raw not in hashes
    for row in rows:
        assert raw not in (row.name, row.token_hash)


async def test_api_token_lifecycle(admin_client: httpx.AsyncClient) -> None:
    created = await admin_client.post(
        "/api/admin/tokens", json={"name": "AutoPkg on build-mac-01", "expires_days": 30}
    )
    assert created.status_code == 201, created.text
    token = created.json()
    assert token["kind"] == "api"
    assert token["name"] == "AutoPkg on build-mac-01"
    assert token["token"].startswith("ods_")
    expires = dt.datetime.fromisoformat(token["expires"])
    assert abs(expires - utcnow() - dt.timedelta(days=30)) < dt.timedelta(seconds=10)

    listed = await admin_client.get("/api/admin/tokens")
    items = listed.json()["items"]
    assert {item["kind"] for item in items} == {"session", "api"}
    assert all("token" not in item for item in items)
    assert token["token"] not in listed.text

    me = await admin_client.get("/api/auth/me", headers=bearer(token["token"]))
    assert me.json()["username"] == "admin"
    about = await admin_client.get("/api/admin/about", headers=bearer(token["token"]))
    assert about.status_code == 200

    revoked = await admin_client.delete(f"/api/admin/tokens/{token['id']}")
    assert revoked.status_code == 204
    refused = await admin_client.get("/api/admin/about", headers=bearer(token["token"]))
    assert_error(refused, 401, "unauthorized")
    again = await admin_client.delete(f"/api/admin/tokens/{token['id']}")
    assert_error(again, 404, "not_found")


async def test_api_token_without_expiry_never_expires(admin_client: httpx.AsyncClient) -> None:
    created = await admin_client.post("/api/admin/tokens", json={"name": "forever"})
    assert created.json()["expires"] is None


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "x", "expires_days": 0}, {"name": "x", "scope": "all"}],
)
async def test_bad_api_token_requests(
    admin_client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await admin_client.post("/api/admin/tokens", json=body)
    assert_error(response, 422, "invalid_input")


async def test_users_cannot_revoke_each_others_tokens_but_admins_can(
    admin_client: httpx.AsyncClient,
) -> None:
    await add_user(admin_client, "reader", "read_only")
    reader = await login(admin_client, "reader", "user passphrase")
    admin_tokens = (await admin_client.get("/api/admin/tokens")).json()["items"]
    refused = await admin_client.delete(
        f"/api/admin/tokens/{admin_tokens[0]['id']}", headers=bearer(reader)
    )
    assert_error(refused, 404, "not_found")
    reader_tokens = (await admin_client.get("/api/admin/tokens", headers=bearer(reader))).json()
    assert len(reader_tokens["items"]) == 1
    revoked = await admin_client.delete(f"/api/admin/tokens/{reader_tokens['items'][0]['id']}")
    assert revoked.status_code == 204
    assert_error(
        await admin_client.get("/api/auth/me", headers=bearer(reader)), 401, "unauthorized"
    )


@pytest.mark.parametrize(
    "header",
    [
        "Basic YWRtaW46b2RzMTIzNCE=",
        "Bearer",
        "Bearer ",
        "Token ods_abc",
        "Bearer not-a-token",
        "Bearerods_abc",
        "ods_abc",
    ],
)
async def test_malformed_or_unknown_authorization_is_refused(
    client: httpx.AsyncClient, header: str
) -> None:
    response = await client.get("/api/admin/about", headers={"Authorization": header})
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_tokens_of_a_deleted_user_stop_working(admin_client: httpx.AsyncClient) -> None:
    user_id = await add_user(admin_client, "leaver", "package_manager")
    session_token = await login(admin_client, "leaver", "user passphrase")
    created = await admin_client.post(
        "/api/admin/tokens", json={"name": "leaver CI"}, headers=bearer(session_token)
    )
    api_token = created.json()["token"]
    assert (await admin_client.delete(f"/api/admin/users/{user_id}")).status_code == 204
    for token in (session_token, api_token):
        response = await admin_client.get("/api/admin/packages", headers=bearer(token))
        assert_error(response, 401, "unauthorized")


# Throttling


@pytest.fixture
async def throttled_app(settings: Settings) -> AsyncIterator[FastAPI]:
    tight = settings.model_copy(update={"login_max_failures": 3, "login_lockout_seconds": 60})
    async with started(tight) as application:
        yield application


async def test_failed_logins_are_throttled_even_with_the_right_password(
    throttled_app: FastAPI,
) -> None:
    wrong = {"username": "admin", "password": "guess"}
    async with client_for(throttled_app) as c:
        for _ in range(3):
            assert_error(await c.post("/api/auth/login", json=wrong), 401, "unauthorized")
        refused = await c.post("/api/auth/login", json=FIRST_START)
        body = assert_error(refused, 429, "too_many_requests")
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 61
        assert f"{retry_after} seconds" in body["message"]
        assert_error(await c.post("/api/auth/login", json=wrong), 429, "too_many_requests")


async def test_throttling_is_per_username_and_address(throttled_app: FastAPI) -> None:
    wrong = {"username": "admin", "password": "guess"}
    async with client_for(throttled_app, "192.0.2.10") as attacker:
        for _ in range(3):
            await attacker.post("/api/auth/login", json=wrong)
        assert (await attacker.post("/api/auth/login", json=wrong)).status_code == 429
        other_user = await attacker.post(
            "/api/auth/login", json={"username": "someone", "password": "guess"}
        )
        assert_error(other_user, 401, "unauthorized")
        same_user_other_case = await attacker.post(
            "/api/auth/login", json={"username": "ADMIN", "password": "guess"}
        )
        assert_error(same_user_other_case, 429, "too_many_requests")
    async with client_for(throttled_app, "192.0.2.20") as operator:
        response = await operator.post("/api/auth/login", json=FIRST_START)
        assert response.status_code == 200


async def test_a_successful_login_resets_the_failure_count(throttled_app: FastAPI) -> None:
    wrong = {"username": "admin", "password": "guess"}
    async with client_for(throttled_app) as c:
        for _ in range(2):
            await c.post("/api/auth/login", json=wrong)
        assert (await c.post("/api/auth/login", json=FIRST_START)).status_code == 200
        for _ in range(2):
            assert_error(await c.post("/api/auth/login", json=wrong), 401, "unauthorized")
        assert (await c.post("/api/auth/login", json=FIRST_START)).status_code == 200


# Roles


@pytest.fixture
async def reader(admin_client: httpx.AsyncClient) -> dict[str, str]:
    await add_user(admin_client, "reader", "read_only")
    return bearer(await login(admin_client, "reader", "user passphrase"))


@pytest.fixture
async def manager(admin_client: httpx.AsyncClient) -> dict[str, str]:
    await add_user(admin_client, "manager", "package_manager")
    return bearer(await login(admin_client, "manager", "user passphrase"))


async def test_read_only_can_read_but_not_change_settings_or_users(
    admin_client: httpx.AsyncClient, reader: dict[str, str]
) -> None:
    for path in ("/api/admin/about", "/api/admin/system", "/api/admin/packages"):
        assert (await admin_client.get(path, headers=reader)).status_code == 200, path
    update_about = await admin_client.post(
        "/api/admin/about/update", json={"name": "Hijacked"}, headers=reader
    )
    body = assert_error(update_about, 403, "forbidden")
    assert "admin role" in body["message"]
    assert "read_only" in body["message"]
    create = await admin_client.post(
        "/api/admin/users",
        json={"username": "sneaky", "password": "sneaky passphrase", "role": "admin"},
        headers=reader,
    )
    assert_error(create, 403, "forbidden")
    about = (await admin_client.get("/api/admin/about")).json()
    assert about["name"] != "Hijacked"
    users = (await admin_client.get("/api/admin/users")).json()["items"]
    assert "sneaky" not in {user["username"] for user in users}


async def test_package_manager_cannot_manage_users_or_settings(
    admin_client: httpx.AsyncClient, manager: dict[str, str]
) -> None:
    assert_error(await admin_client.get("/api/admin/users", headers=manager), 403, "forbidden")
    create = await admin_client.post(
        "/api/admin/users",
        json={"username": "friend", "password": "friend passphrase", "role": "admin"},
        headers=manager,
    )
    assert_error(create, 403, "forbidden")
    admin_id = (await admin_client.get("/api/auth/me")).json()["id"]
    promote = await admin_client.patch(
        f"/api/admin/users/{admin_id}", json={"role": "read_only"}, headers=manager
    )
    assert_error(promote, 403, "forbidden")
    delete = await admin_client.delete(f"/api/admin/users/{admin_id}", headers=manager)
    assert_error(delete, 403, "forbidden")
    about = await admin_client.post(
        "/api/admin/about/update", json={"stage": "Dev"}, headers=manager
    )
    assert_error(about, 403, "forbidden")
    assert (await admin_client.get("/api/admin/packages", headers=manager)).status_code == 200
