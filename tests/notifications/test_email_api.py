"""/api/admin/email-subscriptions on an in-process app mailing a real SMTP server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.helpers.accounts import USER_PASSWORD, add_user
from tests.helpers.api import anonymous, assert_error, login
from tests.helpers.receivers.smtp import SmtpReceiver

PATH = "/api/admin/email-subscriptions"
SUBSCRIPTION = {"address": "mac-admins@example.org", "events": ["package.uploaded"]}


async def created(client: httpx.AsyncClient, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post(PATH, json=body or SUBSCRIPTION)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_create_list_get_change_delete(admin_client: httpx.AsyncClient) -> None:
    sub = await created(admin_client)
    assert sub["address"] == "mac-admins@example.org"
    assert sub["events"] == ["package.uploaded"]
    assert sub["digest_minutes"] == 0
    assert set(sub) == {"id", "address", "events", "digest_minutes", "created"}
    everything = await created(admin_client, {"address": "all@example.org"})
    assert everything["events"] == []
    listed = (await admin_client.get(PATH)).json()
    assert listed["total"] == 2
    assert [item["id"] for item in listed["items"]] == [sub["id"], everything["id"]]
    assert (await admin_client.get(f"{PATH}/{sub['id']}")).json() == sub
    changed = await admin_client.patch(f"{PATH}/{sub['id']}", json={"digest_minutes": 30})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**sub, "digest_minutes": 30}
    assert (await admin_client.delete(f"{PATH}/{sub['id']}")).status_code == 204
    assert_error(await admin_client.get(f"{PATH}/{sub['id']}"), 404, "not_found")
    assert (await admin_client.get(PATH)).json()["total"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"address": "admin@example.org\r\nBcc: victim@example.org"},
        {"address": "admin@example.org\nX: y"},
        {"address": "admin@example.org\r"},
        {"address": "Admin <admin@example.org>"},
        {"address": "admin@example.org, other@example.org"},
        {"address": "admin @example.org"},
        {"address": "admin@localhost"},
        {"address": "no-at-sign.example.org"},
        {"address": ""},
        {"address": 5},
        {},
        {"address": "a@example.org", "events": ["no.such_kind"]},
        {"address": "a@example.org", "events": "package.uploaded"},
        {"address": "a@example.org", "digest_minutes": -1},
        {"address": "a@example.org", "digest_minutes": "5"},
        {"address": "a@example.org", "digest_minutes": True},
        {"address": "a@example.org", "digest_minutes": 10081},
        {"address": "a@example.org", "digest_minutes": 1.5},
        {"address": "a@example.org", "secret": "x"},
    ],
)
async def test_malformed_bodies_are_refused(
    admin_client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    assert_error(await admin_client.post(PATH, json=body), 422, "invalid_input")
    sub = await created(admin_client)
    # The same fault in a change: the bad field alone (an empty change is a valid one).
    update = {key: value for key, value in body.items() if key != "address"} or body
    if update:
        response = await admin_client.patch(f"{PATH}/{sub['id']}", json=update)
        assert_error(response, 422, "invalid_input")
    assert (await admin_client.get(f"{PATH}/{sub['id']}")).json() == sub


@pytest.mark.parametrize("subscription_id", ["999", "9223372036854775808", "0", "-1"])
async def test_unknown_ids_are_not_found(
    admin_client: httpx.AsyncClient, subscription_id: str
) -> None:
    url = f"{PATH}/{subscription_id}"
    for method, path, body in [
        ("GET", url, None),
        ("PATCH", url, {"digest_minutes": 5}),
        ("DELETE", url, None),
        ("POST", url + "/test", None),
        ("GET", url + "/deliveries", None),
    ]:
        response = await admin_client.request(method, path, json=body)
        assert_error(response, 404, "not_found", where=f"{method} {path}")


async def test_only_admins_may_use_it(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    sub = await created(admin_client)
    routes = [
        ("POST", PATH, SUBSCRIPTION),
        ("GET", PATH, None),
        ("GET", f"{PATH}/{sub['id']}", None),
        ("PATCH", f"{PATH}/{sub['id']}", {"digest_minutes": 5}),
        ("DELETE", f"{PATH}/{sub['id']}", None),
        ("POST", f"{PATH}/{sub['id']}/test", None),
        ("GET", f"{PATH}/{sub['id']}/deliveries", None),
    ]
    async with anonymous(app) as nobody:
        for method, path, body in routes:
            response = await nobody.request(method, path, json=body)
            assert_error(response, 401, "unauthorized", where=f"{method} {path}")
            wrong = {"Authorization": "Bearer not-a-token"}
            response = await nobody.request(method, path, json=body, headers=wrong)
            assert_error(response, 401, "unauthorized", where=f"{method} {path}")
        for role in ("package_manager", "read_only"):
            await add_user(admin_client, role, role)
            token = await login(nobody, role, USER_PASSWORD)
            for method, path, body in routes:
                response = await nobody.request(
                    method, path, json=body, headers={"Authorization": f"Bearer {token}"}
                )
                assert_error(response, 403, "forbidden", where=f"{role} {method} {path}")
    assert (await admin_client.get(f"{PATH}/{sub['id']}")).status_code == 200


async def test_a_test_mail_is_sent_at_once_and_logged(
    admin_client: httpx.AsyncClient, smtp: SmtpReceiver
) -> None:
    sub = await created(admin_client)
    response = await admin_client.post(f"{PATH}/{sub['id']}/test")
    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["status"] == "delivered"
    assert outcome["event"] == "ping"
    assert outcome["attempts"] == 1
    assert outcome["error"] is None
    [mail] = smtp.wait_for(1)
    assert mail["To"] == "mac-admins@example.org"
    assert mail["Subject"].endswith("Ping")
    log = (await admin_client.get(f"{PATH}/{sub['id']}/deliveries")).json()
    assert log["total"] == 1
    assert log["items"][0] == outcome


async def test_a_test_mail_that_fails_says_why(
    admin_client: httpx.AsyncClient, smtp: SmtpReceiver
) -> None:
    sub = await created(admin_client)
    smtp.stop()
    response = await admin_client.post(f"{PATH}/{sub['id']}/test")
    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["status"] == "failed"
    assert "cannot reach" in outcome["error"]
    assert outcome["attempts"] == 1
    log = (await admin_client.get(f"{PATH}/{sub['id']}/deliveries")).json()
    assert log["items"] == [outcome]


async def test_without_smtp_settings_a_test_mail_is_a_clear_503(app: FastAPI) -> None:
    context = app.state.context
    context.settings = context.settings.model_copy(update={"smtp_host": None})
    async with anonymous(app) as client:
        token = await login(client, "admin", "ods1234!")
        client.headers["Authorization"] = f"Bearer {token}"
        await client.post(
            "/api/auth/password",
            json={"old_password": "ods1234!", "new_password": "a much better passphrase"},
        )
        sub = await created(client)
        response = await client.post(f"{PATH}/{sub['id']}/test")
        assert_error(response, 503, "smtp_not_configured", "ODS_SMTP_HOST")
