"""Every admin route, found from the app itself, refuses callers who may not use it."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from tests.helpers.api import assert_error, login

PATH_PARAM = re.compile(r"\{[^}]+\}")
OPEN_ADMIN_ROUTES: set[tuple[str, str]] = set()
# Every signed-in user manages their own API tokens; everything else that changes
# state under /api/admin needs package_manager or admin.
OWN_TOKEN_ROUTES = {("POST", "/api/admin/tokens"), ("DELETE", "/api/admin/tokens/{token_id}")}
ADMIN_ONLY_READS = {("GET", "/api/admin/users"), ("GET", "/api/admin/users/{user_id}")}


def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every API route under /api/admin, included routers resolved."""
    found = {
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute)
        and route.path
        and route.path.startswith("/api/admin")
        for method in route.methods or ()
    }
    return sorted(found - OPEN_ADMIN_ROUTES)


def concrete(path: str) -> str:
    return PATH_PARAM.sub("1", path)


async def call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.request(method, concrete(path), headers=headers)


async def test_the_admin_routes_are_found(app: FastAPI) -> None:
    routes = admin_routes(app)
    for expected in [
        ("GET", "/api/admin/about"),
        ("POST", "/api/admin/about/update"),
        ("GET", "/api/admin/system"),
        ("GET", "/api/admin/packages"),
        ("POST", "/api/admin/upload"),
        ("GET", "/api/admin/users"),
        ("DELETE", "/api/admin/tokens/{token_id}"),
    ]:
        assert expected in routes


async def test_every_admin_route_needs_a_token(app: FastAPI, client: httpx.AsyncClient) -> None:
    for method, path in admin_routes(app):
        where = f"{method} {path}"
        response = await call(client, method, path, {})
        body = assert_error(response, 401, "unauthorized", where=where)
        assert "Log in" in body["message"], where
        assert response.headers["WWW-Authenticate"] == "Bearer", where


async def test_every_admin_route_refuses_an_unknown_token(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers = {"Authorization": "Bearer ods_not-a-token-anyone-issued"}
    for method, path in admin_routes(app):
        response = await call(client, method, path, headers)
        assert_error(response, 401, "unauthorized", where=f"{method} {path}")


async def test_every_admin_route_needs_the_first_start_password_changed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers = {"Authorization": f"Bearer {await login(client, 'admin', 'ods1234!')}"}
    for method, path in admin_routes(app):
        response = await call(client, method, path, headers)
        assert_error(response, 403, "password_change_required", where=f"{method} {path}")


async def test_read_only_users_change_nothing_but_their_own_tokens(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    created = await admin_client.post(
        "/api/admin/users",
        json={
            "username": "reader",
            "password": "reader passphrase",
            "role": "read_only",
            "must_change_password": False,
        },
    )
    assert created.status_code == 201
    headers = {
        "Authorization": f"Bearer {await login(admin_client, 'reader', 'reader passphrase')}"
    }
    refused = [
        (method, path)
        for method, path in admin_routes(app)
        if (method != "GET" and (method, path) not in OWN_TOKEN_ROUTES)
        or (method, path) in ADMIN_ONLY_READS
    ]
    assert ("POST", "/api/admin/about/update") in refused
    for method, path in refused:
        response = await call(admin_client, method, path, headers)
        assert_error(response, 403, "forbidden", where=f"{method} {path}")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/docs"])
async def test_probes_and_the_schema_are_open(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 200
