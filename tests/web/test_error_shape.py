"""One error shape everywhere: `{"error", "message", "details"}` with the right status."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from ods.app import create_app
from ods.core.config import Settings
from tests.helpers.api import assert_error, login


@pytest.mark.parametrize("path", ["/nope", "/api/admin/nope", "/api/nope/deeper", "/share/"])
async def test_404_unknown_path(client: httpx.AsyncClient, path: str) -> None:
    body = assert_error(await client.get(path), 404, "not_found")
    assert "/openapi.json" in body["message"]
    assert body["details"] is None


async def test_404_unknown_record(admin_client: httpx.AsyncClient) -> None:
    body = assert_error(await admin_client.get("/api/admin/users/4242"), 404, "not_found")
    assert "4242" in body["message"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/admin/about", "GET"),
        ("PUT", "/api/admin/about/update", "POST"),
        ("GET", "/api/auth/login", "POST"),
        ("POST", "/healthz", "GET"),
    ],
)
async def test_405_wrong_method(
    admin_client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await admin_client.request(method, path)
    assert_error(response, 405, "method_not_allowed")
    assert allowed in response.headers["Allow"]


async def test_422_missing_fields_list_every_problem(client: httpx.AsyncClient) -> None:
    body = assert_error(await client.post("/api/auth/login", json={}), 422, "invalid_input")
    assert [detail["field"] for detail in body["details"]] == ["username", "password"]
    for detail in body["details"]:
        assert set(detail) == {"field", "problem"}
        assert detail["problem"]
    assert body["message"].startswith("Invalid request: username: ")


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"username=admin&password=x", "application/x-www-form-urlencoded"),
    ],
)
async def test_422_unusable_body(
    client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    response = await client.post(
        "/api/auth/login", content=content, headers={"Content-Type": content_type}
    )
    body = assert_error(response, 422, "invalid_input")
    assert body["details"]


async def test_422_bad_path_and_query_parameters(admin_client: httpx.AsyncClient) -> None:
    path = assert_error(await admin_client.get("/api/admin/users/abc"), 422, "invalid_input")
    assert path["details"][0]["field"] == "user_id"
    query = assert_error(
        await admin_client.get("/api/admin/events", params={"limit": "x"}), 422, "invalid_input"
    )
    assert query["details"][0]["field"] == "limit"


async def test_422_extra_field(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.post("/api/admin/about/update", json={"colour": "blue"})
    body = assert_error(response, 422, "invalid_input")
    assert body["details"][0]["field"] == "colour"


async def test_400_domain_refusal(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.post("/api/admin/about/update", json={"iss": "0" * 32})
    assert_error(response, 400, "invalid_input")


async def test_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/admin/about")
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    wrong = await client.post("/api/auth/login", json={"username": "admin", "password": "no"})
    assert_error(wrong, 401, "unauthorized")


async def test_403_password_change_required_and_role(client: httpx.AsyncClient) -> None:
    token = await login(client, "admin", "ods1234!")
    headers = {"Authorization": f"Bearer {token}"}
    assert_error(
        await client.get("/api/admin/about", headers=headers), 403, "password_change_required"
    )


async def test_403_role(admin_client: httpx.AsyncClient) -> None:
    await admin_client.post(
        "/api/admin/users",
        json={"username": "viewer", "password": "viewer passphrase", "must_change_password": False},
    )
    token = await login(admin_client, "viewer", "viewer passphrase")
    response = await admin_client.get(
        "/api/admin/users", headers={"Authorization": f"Bearer {token}"}
    )
    assert_error(response, 403, "forbidden")


async def test_409(admin_client: httpx.AsyncClient) -> None:
    admin_id = (await admin_client.get("/api/auth/me")).json()["id"]
    response = await admin_client.delete(f"/api/admin/users/{admin_id}")
    assert_error(response, 409, "conflict")


async def test_429(settings: Settings) -> None:
    strict = settings.model_copy(update={"login_max_failures": 1})
    application: FastAPI = create_app(strict)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://ods.test") as c:
            wrong = {"username": "admin", "password": "guess"}
            assert_error(await c.post("/api/auth/login", json=wrong), 401, "unauthorized")
            response = await c.post("/api/auth/login", json=wrong)
    body = assert_error(response, 429, "too_many_requests")
    assert int(response.headers["Retry-After"]) >= 1
    assert body["details"] is None
