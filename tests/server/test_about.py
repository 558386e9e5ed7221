"""Server settings: `GET /api/admin/about` and `POST /api/admin/about/update`."""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx
import pytest

from ods.app import create_app
from ods.core.config import Settings
from tests.helpers.api import assert_error

ABOUT_KEYS = {"firewalled_mode", "iss", "key", "name", "stage", "url"}


async def about(admin_client: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin_client.get("/api/admin/about")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def update(admin_client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    return await admin_client.post("/api/admin/about/update", json=fields)


async def test_a_fresh_server_has_an_identity_and_defaults(
    admin_client: httpx.AsyncClient,
) -> None:
    body = await about(admin_client)
    assert set(body) == ABOUT_KEYS
    assert re.fullmatch(r"[0-9a-f]{32}", body["iss"])
    assert len(base64.b64decode(body["key"], validate=True)) == 32
    assert body["name"] == ""
    assert body["url"] == ""
    assert body["stage"] == "Prod"
    assert body["firewalled_mode"] is False


async def test_identity_is_stable_across_restarts(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    first = await about(admin_client)
    await update(admin_client, name="Example ODS")
    again = create_app(settings)
    async with again.router.lifespan_context(again):
        transport = httpx.ASGITransport(app=again)
        async with httpx.AsyncClient(transport=transport, base_url="http://ods.test") as c:
            c.headers["Authorization"] = admin_client.headers["Authorization"]
            second = await about(c)
    assert second == first | {"name": "Example ODS"}


async def test_update_every_field(admin_client: httpx.AsyncClient) -> None:
    before = await about(admin_client)
    response = await update(
        admin_client,
        name="Example ODS",
        url="http://192.168.99.100",
        firewalled_mode="Enabled",
        stage="Test",
    )
    assert response.status_code == 201, response.text
    expected = before | {
        "name": "Example ODS",
        "url": "http://192.168.99.100",
        "firewalled_mode": True,
        "stage": "Test",
    }
    assert response.json() == expected
    assert await about(admin_client) == expected


async def test_a_partial_update_keeps_the_other_fields(admin_client: httpx.AsyncClient) -> None:
    await update(admin_client, name="Example ODS", url="https://ods.example.com", stage="Dev")
    response = await update(admin_client, stage="Prod")
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["url"], body["stage"]) == (
        "Example ODS",
        "https://ods.example.com",
        "Prod",
    )
    assert (await update(admin_client)).json() == body


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("Enabled", True),
        ("Disabled", False),
        (True, True),
        (False, False),
    ],
)
async def test_firewalled_mode_values(
    admin_client: httpx.AsyncClient, sent: object, stored: bool
) -> None:
    await update(admin_client, firewalled_mode="Disabled" if stored else "Enabled")
    response = await update(admin_client, firewalled_mode=sent)
    assert response.status_code == 201, response.text
    assert response.json()["firewalled_mode"] is stored
    assert (await about(admin_client))["firewalled_mode"] is stored


@pytest.mark.parametrize("stage", ["Dev", "Test", "Prod"])
async def test_each_stage(admin_client: httpx.AsyncClient, stage: str) -> None:
    response = await update(admin_client, stage=stage)
    assert response.json()["stage"] == stage


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"stage": "Staging"}, "stage"),
        ({"stage": "prod"}, "stage"),
        ({"firewalled_mode": "maybe"}, "firewalled_mode"),
        # Exactly booleans and the original's two words: nothing is guessed.
        ({"firewalled_mode": 0}, "firewalled_mode"),
        ({"firewalled_mode": 1}, "firewalled_mode"),
        ({"firewalled_mode": "yes"}, "firewalled_mode"),
        ({"firewalled_mode": "true"}, "firewalled_mode"),
        ({"firewalled_mode": "enabled"}, "firewalled_mode"),
        ({"firewalled_mode": "DISABLED"}, "firewalled_mode"),
        ({"firewalled_mode": ["Enabled"]}, "firewalled_mode"),
        ({"url": "ftp://192.168.99.100"}, "url"),
        ({"url": "192.168.99.100"}, "url"),
        ({"url": "http://bad host/"}, "url"),
        ({"url": "   "}, "url"),
        ({"url": "javascript:alert(document.domain)//"}, "url"),
        ({"url": "http://admin:secret@ods.example.com"}, "url"),
        ({"url": "http://ods.example.com/?next=/"}, "url"),
        ({"name": "   "}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"colour": "blue"}, "colour"),
        ({"registered_on": "2017-11-10T04:45:47"}, "registered_on"),
    ],
)
async def test_invalid_updates_are_refused_and_change_nothing(
    admin_client: httpx.AsyncClient, fields: dict[str, Any], field: str
) -> None:
    before = await about(admin_client)
    response = await update(admin_client, **fields)
    body = assert_error(response, 422, "invalid_input")
    assert field in {detail["field"] for detail in body["details"]}
    assert all(set(detail) == {"field", "problem"} for detail in body["details"])
    assert field in body["message"]
    assert await about(admin_client) == before


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("http://192.168.99.100/", "http://192.168.99.100"),
        ("https://ods.example.com:8443/ods", "https://ods.example.com:8443/ods"),
        ("  http://[fd00::1]:8000  ", "http://[fd00::1]:8000"),
        ("HTTPS://ODS.Example.COM/", "https://ods.example.com"),
    ],
)
async def test_url_is_normalised(admin_client: httpx.AsyncClient, sent: str, stored: str) -> None:
    response = await update(admin_client, url=sent)
    assert response.status_code == 201, response.text
    assert response.json()["url"] == stored


@pytest.mark.parametrize("field", ["iss", "key"])
async def test_iss_and_key_cannot_be_changed(admin_client: httpx.AsyncClient, field: str) -> None:
    before = await about(admin_client)
    other = "0" * 32 if field == "iss" else base64.b64encode(b"x" * 32).decode()
    response = await update(admin_client, name="Changed", **{field: other})
    body = assert_error(response, 400, "invalid_input")
    assert field in body["message"]
    assert "cannot be changed" in body["message"]
    assert await about(admin_client) == before


async def test_sending_back_the_same_iss_and_key_is_accepted(
    admin_client: httpx.AsyncClient,
) -> None:
    current = await about(admin_client)
    response = await update(
        admin_client, iss=current["iss"], key=current["key"], name="Example ODS"
    )
    assert response.status_code == 201, response.text
    assert response.json() == current | {"name": "Example ODS"}


async def test_a_whole_about_object_can_be_posted_back(admin_client: httpx.AsyncClient) -> None:
    current = await about(admin_client)
    edited = current | {"name": "Round trip", "firewalled_mode": True}
    response = await update(admin_client, **edited)
    assert response.status_code == 201, response.text
    assert response.json() == edited


async def test_name_and_url_can_be_cleared(admin_client: httpx.AsyncClient) -> None:
    await update(admin_client, name="Example ODS", url="http://192.168.99.100")
    response = await update(admin_client, name="", url="")
    assert response.status_code == 201, response.text
    assert (response.json()["name"], response.json()["url"]) == ("", "")


async def test_changes_are_recorded_in_the_event_log(admin_client: httpx.AsyncClient) -> None:
    await update(admin_client, name="Example ODS", stage="Dev")
    await update(admin_client, stage="Dev")
    events = await admin_client.get("/api/admin/events", params={"kind": "server.updated"})
    items = events.json()["items"]
    assert len(items) == 1
    assert items[0]["actor"] == "admin"
    assert "Example ODS" in items[0]["message"]
    assert "Dev" in items[0]["message"]


@pytest.mark.parametrize(("role", "sees_key"), [("read_only", False), ("package_manager", False)])
async def test_only_admins_see_the_registration_key(
    admin_client: httpx.AsyncClient, role: str, sees_key: bool
) -> None:
    created = await admin_client.post(
        "/api/admin/users",
        json={
            "username": "viewer",
            "password": "viewer passphrase",
            "role": role,
            "must_change_password": False,
        },
    )
    assert created.status_code == 201, created.text
    login = await admin_client.post(
        "/api/auth/login", json={"username": "viewer", "password": "viewer passphrase"}
    )
    token = login.json()["token"]
    seen = await admin_client.get("/api/admin/about", headers={"Authorization": f"Bearer {token}"})
    assert seen.status_code == 200
    assert set(seen.json()) == ABOUT_KEYS
    assert (seen.json()["key"] is not None) is sees_key
    assert seen.json()["iss"] == (await about(admin_client))["iss"]
    assert (await about(admin_client))["key"]


async def test_the_schema_says_which_firewalled_mode_values_are_taken(
    admin_client: httpx.AsyncClient,
) -> None:
    # A client generated from the schema must be able to send the original's "Enabled".
    schema = (await admin_client.get("/openapi.json")).json()
    field = schema["components"]["schemas"]["AboutUpdate"]["properties"]["firewalled_mode"]
    assert field["anyOf"] == [
        {"type": "boolean"},
        {"type": "string", "enum": ["Enabled", "Disabled"]},
        {"type": "null"},
    ]
