"""Tokens: logout, expiry, hashes at rest, API tokens and who may revoke them."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from ods.core.context import Context
from ods.core.models import Token, utcnow
from tests.helpers.accounts import add_user
from tests.helpers.api import NEW_PASSWORD, assert_error, bearer, login


def context_of(app: FastAPI) -> Context:
    context: Context = app.state.context
    return context


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
