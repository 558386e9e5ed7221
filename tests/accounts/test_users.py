"""Local accounts: create, list, read, change, delete; the last admin is protected."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from ods.core.models import utcnow
from tests.helpers.api import assert_error, bearer, login

USER_KEYS = {"id", "username", "role", "must_change_password", "created", "created_ts", "source"}


async def create(admin_client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"username": "alice", "password": "alice passphrase"} | fields
    response = await admin_client.post("/api/admin/users", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def my_id(admin_client: httpx.AsyncClient) -> int:
    user_id: int = (await admin_client.get("/api/auth/me")).json()["id"]
    return user_id


async def test_the_first_start_admin_is_listed(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.get("/api/admin/users")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [user["username"] for user in items] == ["admin"]
    assert set(items[0]) == USER_KEYS
    assert items[0]["role"] == "admin"
    assert items[0]["must_change_password"] is False


async def test_create_user_defaults_to_read_only_with_a_forced_change(
    admin_client: httpx.AsyncClient,
) -> None:
    before = utcnow()
    user = await create(admin_client)
    assert set(user) == USER_KEYS
    assert user["username"] == "alice"
    assert user["role"] == "read_only"
    assert user["must_change_password"] is True
    created = dt.datetime.fromisoformat(user["created"])
    assert before - dt.timedelta(seconds=1) <= created <= utcnow()
    assert user["created_ts"] == int(created.replace(tzinfo=dt.UTC).timestamp())

    token = await login(admin_client, "alice", "alice passphrase")
    refused = await admin_client.get("/api/admin/about", headers=bearer(token))
    assert_error(refused, 403, "password_change_required")
    changed = await admin_client.post(
        "/api/auth/password",
        json={"old_password": "alice passphrase", "new_password": "alice's own phrase"},
        headers=bearer(token),
    )
    assert changed.status_code == 204
    assert (await admin_client.get("/api/admin/about", headers=bearer(token))).status_code == 200


@pytest.mark.parametrize("role", ["admin", "package_manager", "read_only"])
async def test_create_user_with_each_role(admin_client: httpx.AsyncClient, role: str) -> None:
    user = await create(admin_client, role=role, must_change_password=False)
    me = await admin_client.get(
        "/api/auth/me", headers=bearer(await login(admin_client, "alice", "alice passphrase"))
    )
    assert me.json() == {
        "id": user["id"],
        "username": "alice",
        "role": role,
        "must_change_password": False,
        "source": "local",
    }


async def test_create_user_is_recorded_with_the_actor(admin_client: httpx.AsyncClient) -> None:
    await create(admin_client)
    events = (await admin_client.get("/api/admin/events", params={"kind": "user.created"})).json()
    assert [(e["actor"], e["message"]) for e in events["items"]] == [
        ("admin", "User alice created")
    ]


@pytest.mark.parametrize("username", ["alice", "Alice", "ALICE"])
async def test_duplicate_username_is_a_conflict(
    admin_client: httpx.AsyncClient, username: str
) -> None:
    await create(admin_client)
    response = await admin_client.post(
        "/api/admin/users", json={"username": username, "password": "other passphrase"}
    )
    assert "exists already" in assert_error(response, 409, "conflict")["message"]
    users = (await admin_client.get("/api/admin/users")).json()["items"]
    assert sorted(user["username"] for user in users) == ["admin", "alice"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "has space", "password": "a passphrase"}, "username"),
        ({"username": "", "password": "a passphrase"}, "username"),
        ({"username": "x" * 151, "password": "a passphrase"}, "username"),
        ({"username": "bob", "password": "a passphrase", "role": "root"}, "role"),
        ({"username": "bob"}, "password"),
        ({"username": "bob", "password": "a passphrase", "is_superuser": True}, "is_superuser"),
    ],
)
async def test_invalid_user_bodies(
    admin_client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await admin_client.post("/api/admin/users", json=body)
    details = assert_error(response, 422, "invalid_input")["details"]
    assert field in {detail["field"] for detail in details}


async def test_weak_password_is_refused(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.post(
        "/api/admin/users", json={"username": "bob", "password": "short"}
    )
    assert "at least 8" in assert_error(response, 400, "invalid_input")["message"]
    named = await admin_client.post(
        "/api/admin/users", json={"username": "margaretha", "password": "margaretha1"}
    )
    assert "too easy to guess" in assert_error(named, 400, "invalid_input")["message"]
    assert (await admin_client.get("/api/admin/users")).json()["items"][-1]["username"] == "admin"


async def test_get_user(admin_client: httpx.AsyncClient) -> None:
    user = await create(admin_client, role="package_manager")
    response = await admin_client.get(f"/api/admin/users/{user['id']}")
    assert response.status_code == 200
    assert response.json() == user
    missing = await admin_client.get("/api/admin/users/9999")
    assert "9999" in assert_error(missing, 404, "not_found")["message"]
    assert_error(await admin_client.get("/api/admin/users/alice"), 422, "invalid_input")


async def test_change_role(admin_client: httpx.AsyncClient) -> None:
    user = await create(admin_client, must_change_password=False)
    token = await login(admin_client, "alice", "alice passphrase")
    response = await admin_client.patch(
        f"/api/admin/users/{user['id']}", json={"role": "package_manager"}
    )
    assert response.status_code == 200
    assert response.json()["role"] == "package_manager"
    me = await admin_client.get("/api/auth/me", headers=bearer(token))
    assert me.json()["role"] == "package_manager"


async def test_password_reset_ends_sessions_and_forces_a_change(
    admin_client: httpx.AsyncClient,
) -> None:
    user = await create(admin_client, must_change_password=False)
    token = await login(admin_client, "alice", "alice passphrase")
    response = await admin_client.patch(
        f"/api/admin/users/{user['id']}", json={"password": "reset passphrase"}
    )
    assert response.status_code == 200
    assert response.json()["must_change_password"] is True
    assert_error(await admin_client.get("/api/auth/me", headers=bearer(token)), 401, "unauthorized")
    old = await admin_client.post(
        "/api/auth/login", json={"username": "alice", "password": "alice passphrase"}
    )
    assert_error(old, 401, "unauthorized")
    new = await admin_client.post(
        "/api/auth/login", json={"username": "alice", "password": "reset passphrase"}
    )
    assert new.json()["must_change_password"] is True


async def test_password_reset_follows_the_policy(admin_client: httpx.AsyncClient) -> None:
    user = await create(admin_client)
    response = await admin_client.patch(
        f"/api/admin/users/{user['id']}", json={"password": "ods1234!"}
    )
    assert_error(response, 400, "invalid_input")


@pytest.mark.parametrize("body", [{"role": "owner"}, {"username": "renamed"}, {"password": ""}])
async def test_invalid_updates(admin_client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    user = await create(admin_client)
    response = await admin_client.patch(f"/api/admin/users/{user['id']}", json=body)
    assert_error(response, 422, "invalid_input")


async def test_update_unknown_user(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.patch("/api/admin/users/9999", json={"role": "admin"})
    assert_error(response, 404, "not_found")


async def test_the_last_admin_cannot_be_demoted(admin_client: httpx.AsyncClient) -> None:
    admin_id = await my_id(admin_client)
    response = await admin_client.patch(f"/api/admin/users/{admin_id}", json={"role": "read_only"})
    assert "last admin" in assert_error(response, 409, "conflict")["message"]
    assert (await admin_client.get("/api/auth/me")).json()["role"] == "admin"


async def test_an_admin_can_be_demoted_while_another_remains(
    admin_client: httpx.AsyncClient,
) -> None:
    other = await create(admin_client, role="admin", must_change_password=False)
    admin_id = await my_id(admin_client)
    demoted = await admin_client.patch(
        f"/api/admin/users/{admin_id}", json={"role": "package_manager"}
    )
    assert demoted.status_code == 200
    assert_error(await admin_client.get("/api/admin/users"), 403, "forbidden")
    other_token = await login(admin_client, "alice", "alice passphrase")
    last = await admin_client.patch(
        f"/api/admin/users/{other['id']}", json={"role": "read_only"}, headers=bearer(other_token)
    )
    assert_error(last, 409, "conflict")


async def test_nobody_deletes_their_own_account(admin_client: httpx.AsyncClient) -> None:
    await create(admin_client, role="admin")
    admin_id = await my_id(admin_client)
    response = await admin_client.delete(f"/api/admin/users/{admin_id}")
    assert "own account" in assert_error(response, 409, "conflict")["message"]


async def test_delete_user(admin_client: httpx.AsyncClient) -> None:
    user = await create(admin_client, role="admin")
    response = await admin_client.delete(f"/api/admin/users/{user['id']}")
    assert response.status_code == 204
    assert_error(await admin_client.get(f"/api/admin/users/{user['id']}"), 404, "not_found")
    assert_error(await admin_client.delete(f"/api/admin/users/{user['id']}"), 404, "not_found")
    gone = await admin_client.post(
        "/api/auth/login", json={"username": "alice", "password": "alice passphrase"}
    )
    assert_error(gone, 401, "unauthorized")
    events = (await admin_client.get("/api/admin/events", params={"kind": "user.deleted"})).json()
    assert [e["actor"] for e in events["items"]] == ["admin"]


async def test_a_deleted_name_can_be_used_again(admin_client: httpx.AsyncClient) -> None:
    user = await create(admin_client)
    await admin_client.delete(f"/api/admin/users/{user['id']}")
    again = await create(admin_client, role="package_manager")
    assert again["role"] == "package_manager"
    token = await login(admin_client, "alice", "alice passphrase")
    me = await admin_client.get("/api/auth/me", headers=bearer(token))
    assert me.json()["role"] == "package_manager"
