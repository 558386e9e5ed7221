"""Login, the first-start password and password changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from ods.core.config import Settings
from ods.core.models import utcnow
from tests.helpers.accounts import FIRST_START, add_user
from tests.helpers.api import NEW_PASSWORD, assert_error, bearer, client_for, login, started

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
        "source": "local",
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
        ("password", "too easy to guess: this is a top-10 common password"),
        ("12345678", "too easy to guess: this is a top-10 common password"),
        ("aaaaaaaa", 'too easy to guess: repeats like "aaa" are easy to guess'),
        ("qwertyuiop", "top-100 common password"),
        ("Summer2024!", "similar to a commonly used password"),
        ("admin2026", "too easy to guess"),
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


@pytest.mark.parametrize("length", [73, 1024])
async def test_a_long_passphrase_is_checked_not_a_server_error(
    client: httpx.AsyncClient, length: int
) -> None:
    # The strength estimate refuses more than 72 characters; the schema allows 1024.
    token = await login(client, "admin", "ods1234!")
    words = "correct horse battery staple lantern quarry "
    new_password = (words * (length // len(words) + 1))[:length]
    response = await client.post(
        "/api/auth/password",
        json={"old_password": "ods1234!", "new_password": new_password},
        headers=bearer(token),
    )
    assert response.status_code == 204, response.text
