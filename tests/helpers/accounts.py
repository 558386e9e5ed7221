"""Accounts for the tests: the first-start login and extra users with a role."""

from __future__ import annotations

import httpx

FIRST_START = {"username": "admin", "password": "ods1234!"}
USER_PASSWORD = "user passphrase"


async def add_user(admin_client: httpx.AsyncClient, username: str, role: str) -> int:
    """A user with USER_PASSWORD and this role, who need not change it; its id."""
    response = await admin_client.post(
        "/api/admin/users",
        json={
            "username": username,
            "password": USER_PASSWORD,
            "role": role,
            "must_change_password": False,
        },
    )
    assert response.status_code == 201, response.text
    user_id: int = response.json()["id"]
    return user_id
