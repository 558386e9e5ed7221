"""Roles: read_only and package_manager are refused what only an admin may do."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.accounts import add_user
from tests.helpers.api import assert_error, bearer, login


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
