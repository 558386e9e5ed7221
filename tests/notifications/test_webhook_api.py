"""The webhooks of the admin API: admins only, the one error shape, a test ping answered."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from ods.notifications.webhooks.signing import verify
from tests.helpers.accounts import USER_PASSWORD, add_user
from tests.helpers.api import anonymous, assert_error, bearer, login
from tests.helpers.receivers.http import arrived, receiving

SECRET = "webhook test secret"


async def test_create_list_get_patch_delete(hooks: httpx.AsyncClient) -> None:
    with receiving(SECRET) as receiver:
        made = await hooks.post(
            "/api/admin/webhooks",
            json={"url": receiver.url, "secret": SECRET, "events": ["package.uploaded"]},
        )
        assert made.status_code == 201, made.text
        hook = made.json()
        assert hook["format"] == "ods"
        assert hook["enabled"] is True
        assert hook["has_secret"]
        assert "secret" not in hook
        assert SECRET not in made.text
        assert hook["events"] == ["package.uploaded"]
        listed = (await hooks.get("/api/admin/webhooks")).json()["items"]
        assert [item["id"] for item in listed] == [hook["id"]]
        assert (await hooks.get(f"/api/admin/webhooks/{hook['id']}")).json() == hook
        patched = await hooks.patch(
            f"/api/admin/webhooks/{hook['id']}", json={"enabled": False, "events": []}
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["enabled"] is False
        assert patched.json()["events"] == []
        assert (await hooks.delete(f"/api/admin/webhooks/{hook['id']}")).status_code == 204
        gone = await hooks.get(f"/api/admin/webhooks/{hook['id']}")
        assert_error(gone, 404, "not_found", str(hook["id"]))


async def test_test_ping_is_signed_and_answers_its_outcome(hooks: httpx.AsyncClient) -> None:
    with receiving(SECRET) as receiver:
        hook = (
            await hooks.post("/api/admin/webhooks", json={"url": receiver.url, "secret": SECRET})
        ).json()
        answer = await hooks.post(f"/api/admin/webhooks/{hook['id']}/test")
        assert answer.status_code == 200, answer.text
        outcome = answer.json()
        assert outcome["status"] == "delivered"
        assert outcome["response_status"] == 200
        assert outcome["event"] == "webhook.ping"
        assert outcome["attempts"] == 1
        (ping,) = receiver.received
        assert ping.signature_ok is True
        assert verify(SECRET, ping.body, ping.headers["x-ods-signature-256"])
        assert ping.headers["x-ods-event"] == "webhook.ping"
        assert ping.headers["x-ods-delivery"] == str(outcome["id"])
        body = ping.json
        assert set(body) == {"id", "event", "created", "server", "data"}
        assert set(body["server"]) == {"iss", "name", "url"}
        assert body["data"] == {"webhook_id": hook["id"]}

        receiver.then = 500
        failed = (await hooks.post(f"/api/admin/webhooks/{hook['id']}/test")).json()
        assert failed["status"] == "failed"
        assert failed["response_status"] == 500
        assert "500" in failed["error"]
        log = (await hooks.get(f"/api/admin/webhooks/{hook['id']}/deliveries")).json()
        assert log["total"] == 2
        assert [item["status"] for item in log["items"]] == ["failed", "delivered"]


async def test_redeliver_sends_the_event_again(hooks: httpx.AsyncClient) -> None:
    with receiving(SECRET) as receiver:
        hook = (
            await hooks.post("/api/admin/webhooks", json={"url": receiver.url, "secret": SECRET})
        ).json()
        first = (await hooks.post(f"/api/admin/webhooks/{hook['id']}/test")).json()
        again = await hooks.post(
            f"/api/admin/webhooks/{hook['id']}/deliveries/{first['id']}/redeliver"
        )
        assert again.status_code == 202, again.text
        assert again.json()["status"] == "pending"
        assert again.json()["id"] != first["id"]
        received = await arrived(receiver, 2)
        assert received[1].json["event"] == "webhook.ping"
        assert received[1].json["id"] == again.json()["id"]
        missing = await hooks.post(f"/api/admin/webhooks/{hook['id']}/deliveries/99999/redeliver")
        assert_error(missing, 404, "not_found", "99999")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9/hook",
        "http://0.0.0.0:9/",
    ],
)
async def test_loopback_and_link_local_targets_are_refused_by_default(
    client: httpx.AsyncClient, admin_client: httpx.AsyncClient, url: str
) -> None:
    answer = await admin_client.post("/api/admin/webhooks", json={"url": url, "secret": SECRET})
    assert_error(answer, 422, "invalid_input", "url", "ODS_WEBHOOK_ALLOW")


async def test_a_loopback_target_allowed_then_patched_to_link_local_is_refused(
    hooks: httpx.AsyncClient,
) -> None:
    hook = (
        await hooks.post(
            "/api/admin/webhooks", json={"url": "http://127.0.0.1:9/", "secret": SECRET}
        )
    ).json()
    answer = await hooks.patch(
        f"/api/admin/webhooks/{hook['id']}", json={"url": "http://169.254.169.254/"}
    )
    assert_error(answer, 422, "invalid_input", "link-local")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": "ftp://example.org/", "secret": SECRET},
        {"url": "https://example.org/", "secret": SECRET, "format": "email"},
        {"url": "https://example.org/", "secret": SECRET, "events": ["no.such_kind"]},
        {"url": "https://example.org/"},
        {"url": "https://example.org/", "secret": SECRET, "colour": "blue"},
    ],
)
async def test_malformed_bodies_answer_422(
    hooks: httpx.AsyncClient, body: dict[str, object]
) -> None:
    assert_error(await hooks.post("/api/admin/webhooks", json=body), 422, "invalid_input")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/admin/webhooks/999"),
        ("PATCH", "/api/admin/webhooks/999"),
        ("DELETE", "/api/admin/webhooks/999"),
        ("POST", "/api/admin/webhooks/999/test"),
        ("GET", "/api/admin/webhooks/999/deliveries"),
        ("POST", "/api/admin/webhooks/999/deliveries/1/redeliver"),
    ],
)
async def test_unknown_ids_answer_404(hooks: httpx.AsyncClient, method: str, path: str) -> None:
    answer = await hooks.request(method, path, json={} if method == "PATCH" else None)
    assert_error(answer, 404, "not_found", "999")


async def test_only_admins_manage_webhooks(app: FastAPI, admin_client: httpx.AsyncClient) -> None:
    async with anonymous(app) as nobody:
        assert_error(await nobody.get("/api/admin/webhooks"), 401, "unauthorized")
        wrong = await nobody.get("/api/admin/webhooks", headers=bearer("not-a-token"))
        assert_error(wrong, 401, "unauthorized")
        await add_user(admin_client, "packager", "package_manager")
        token = await login(nobody, "packager", USER_PASSWORD)
        for method, path in [
            ("GET", "/api/admin/webhooks"),
            ("POST", "/api/admin/webhooks"),
            ("GET", "/api/admin/webhooks/1/deliveries"),
        ]:
            answer = await nobody.request(
                method, path, headers=bearer(token), json={} if method == "POST" else None
            )
            assert_error(answer, 403, "forbidden", where=f"{method} {path}")
