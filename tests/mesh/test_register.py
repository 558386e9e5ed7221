"""Registration: both sides store each other; every wrong input is a clear error."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from sqlalchemy import update

from ods.core.models import Server
from ods.mesh.peers import links, registration
from ods.mesh.peers.verification import OUTSIDER
from ods.mesh.protocol import signing
from ods.server.identity import get_identity, new_key
from tests.helpers.api import assert_error
from tests.helpers.mesh import Mesh, Node


async def test_registration_stores_both_sides(mesh: Mesh) -> None:
    a = await mesh.add("ods-a", stage="Dev")
    b = await mesh.add("ods-b", stage="Prod")
    response = await a.register_with(b)
    assert response.status_code == 201, response.text
    peer = response.json()
    assert peer["name"] == "ods-b"
    assert peer["url"] == b.url
    assert peer["stage"] == "Prod"
    assert peer["reachable"] is True

    listed_a = (await a.admin.get("/api/admin/registered_ods")).json()["items"]
    listed_b = (await b.admin.get("/api/admin/registered_ods")).json()["items"]
    assert [p["iss"] for p in listed_a] == [(await b.about())["iss"]]
    assert [p["iss"] for p in listed_b] == [(await a.about())["iss"]]
    assert listed_b[0]["url"] == a.url
    assert listed_b[0]["stage"] == "Dev"
    assert set(listed_a[0]) >= {
        "firewalled_mode",
        "id",
        "name",
        "registered_on",
        "registered_on_ts",
        "stage",
        "url",
    }


async def test_link_secret_is_not_stored_in_clear(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    assert (await a.register_with(b)).status_code == 201
    db_bytes = (mesh.root / "ods-a" / "ods.db").read_bytes()
    wal = mesh.root / "ods-a" / "ods.db-wal"
    if wal.exists():
        db_bytes += wal.read_bytes()
    key = str((await a.about())["key"])
    assert key.encode() not in db_bytes
    assert b"v1:" in db_bytes


async def test_wrong_key_is_refused_and_nothing_is_stored(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    about = await b.about()
    response = await a.admin.post(
        "/api/admin/register", json={"url": b.url, "iss_id": about["iss"], "key": new_key()}
    )
    assert response.status_code == 400
    assert "key" in response.json()["message"]
    for node in (a, b):
        assert (await node.admin.get("/api/admin/registered_ods")).json()["items"] == []


async def test_wrong_iss_is_refused(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    about = await b.about()
    response = await a.admin.post(
        "/api/admin/register", json={"url": b.url, "iss_id": "0" * 32, "key": about["key"]}
    )
    assert response.status_code == 400
    assert "another server" in response.json()["message"]
    assert "iss" in response.json()["message"]


async def test_unreachable_url_is_a_clear_error(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    response = await a.admin.post(
        "/api/admin/register",
        json={"url": "http://nowhere.test", "iss_id": "1" * 32, "key": new_key()},
    )
    assert response.status_code == 502
    body = response.json()
    assert body["error"] == "peer_unreachable"
    assert "nowhere.test" in body["message"]


async def test_registering_again_renews_the_link_on_both_sides(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    assert (await a.register_with(b)).status_code == 201
    first = await links.link_by_iss(b.context, a.context.iss)
    again = await a.register_with(b)
    assert again.status_code == 201, again.text
    renewed = await links.link_by_iss(b.context, a.context.iss)
    on_a = await links.link_by_iss(a.context, b.context.iss)
    assert first is not None
    assert renewed is not None
    assert on_a is not None
    assert renewed.secret != first.secret
    assert renewed.secret == on_a.secret
    events = (await b.admin.get("/api/admin/events", params={"kind": "peer.registered"})).json()
    assert [e["data"]["re_registered"] for e in events["items"]][:2] == [True, False]


async def test_registering_with_itself_is_refused(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    response = await a.register_with(a)
    assert response.status_code == 400
    assert "itself" in response.json()["message"]


async def test_name_and_url_must_be_set_first(mesh: Mesh) -> None:
    a = await mesh.add("ods-a", configure=False)
    b = await mesh.add("ods-b")
    response = await a.register_with(b)
    assert response.status_code == 400
    assert "name and url" in response.json()["message"]


async def test_bad_bodies_are_refused(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    for body in (
        {"url": "ftp://x", "iss_id": "1" * 32, "key": new_key()},
        {"url": "http://x.test", "iss_id": "not-an-iss", "key": new_key()},
        {"url": "http://x.test", "iss_id": "1" * 32},
        {"url": "http://x.test", "iss_id": "1" * 32, "key": "short"},
    ):
        response = await a.admin.post("/api/admin/register", json=body)
        assert response.status_code in (400, 422), (body, response.text)
        assert set(response.json()) == {"error", "message", "details"}


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("javascript:alert(document.domain)//", "http:// or https://"),
        ("http://admin:secret@ods-b.test", "user name or password"),
        ("http://ods-b.test/?next=/", "query"),
    ],
)
async def test_a_url_that_is_not_a_plain_http_url_is_refused(
    mesh: Mesh, url: str, why: str
) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    about = await b.about()
    response = await a.admin.post(
        "/api/admin/register", json={"url": url, "iss_id": about["iss"], "key": about["key"]}
    )
    assert_error(response, 400, "invalid_input", "url", why)
    for node in (a, b):
        assert (await node.admin.get("/api/admin/registered_ods")).json()["items"] == []


async def test_the_url_is_stored_normalised_and_says_whether_the_link_is_encrypted(
    mesh: Mesh,
) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    about = await b.about()
    response = await a.admin.post(
        "/api/admin/register",
        json={"url": "HTTPS://ODS-B.test/", "iss_id": about["iss"], "key": about["key"]},
    )
    assert response.status_code == 201, response.text
    assert (response.json()["url"], response.json()["transport"]) == ("https://ods-b.test", "https")
    [seen_by_b] = (await b.admin.get("/api/admin/registered_ods")).json()["items"]
    assert (seen_by_b["url"], seen_by_b["transport"]) == (a.url, "http")


async def set_own_url(node: Node, url: str) -> None:
    """What a server of an older version, or a hostile one, may send as its own url."""
    async with node.context.db.transaction() as session:
        await session.execute(update(Server).values(url=url))


async def test_a_registering_peer_with_a_bad_url_is_refused(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await set_own_url(a, "javascript:alert(document.domain)//")
    response = await a.register_with(b)
    # B answered 400; A says B refused, and why.
    body = assert_error(response, 502, "peer_refused", "url", "http:// or https://")
    assert "POST /api/admin/about/update" in body["message"]
    for node in (a, b):
        assert (await node.admin.get("/api/admin/registered_ods")).json()["items"] == []
    events = (await b.admin.get("/api/admin/events")).json()["items"]
    assert not any(event["kind"] == "peer.registered" for event in events)


async def test_a_registering_peer_url_is_stored_normalised(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await set_own_url(a, "HTTP://ODS-A.Test/")
    assert (await a.register_with(b)).status_code == 201
    [seen_by_b] = (await b.admin.get("/api/admin/registered_ods")).json()["items"]
    assert seen_by_b["url"] == "http://ods-a.test"
    [event] = (await b.admin.get("/api/admin/events", params={"kind": "peer.registered"})).json()[
        "items"
    ]
    assert event["data"]["url"] == "http://ods-a.test"


async def test_unregister_removes_both_sides(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    peer_id = (await a.register_with(b)).json()["id"]
    response = await a.admin.delete(f"/api/admin/registered_ods/{peer_id}")
    assert response.status_code == 204
    assert (await a.admin.get("/api/admin/registered_ods")).json()["items"] == []
    assert (await b.admin.get("/api/admin/registered_ods")).json()["items"] == []
    assert (await a.admin.delete(f"/api/admin/registered_ods/{peer_id}")).status_code == 404


async def test_peer_api_refuses_unsigned_and_unknown_senders_alike(
    mesh: Mesh, caplog: pytest.LogCaptureFixture
) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    caplog.set_level(logging.INFO, logger="ods.mesh.peers.verification")
    async with httpx.AsyncClient(transport=mesh.transport) as raw:
        unsigned = await raw.post(f"{b.url}/api/ods/unregister", json={})
        assert unsigned.status_code == 401
        b_iss = str((await b.about())["iss"])
        headers = signing.sign(
            b"x" * 32,
            method="POST",
            target="/api/ods/unregister",
            body=b"{}",
            sender=str((await a.about())["iss"]),
            receiver=b_iss,
        )
        unknown = await raw.post(f"{b.url}/api/ods/unregister", content=b"{}", headers=headers)
        assert unknown.status_code == 401
    # Outsiders cannot tell a missing signature from an unknown iss; the log can.
    assert unknown.json() == unsigned.json()
    assert unknown.json()["message"] == OUTSIDER
    assert "missing header" in caplog.text
    assert "no registered peer has iss" in caplog.text


async def test_undelivered_notifications_show_as_pending_to(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    assert (await a.register_with(b)).status_code == 201
    mesh.transport.down.add("ods-b.test")
    upload = await a.admin.post(
        "/api/admin/upload", files={"file": ("x.pkg", b"payload")}, data={"stage": "Prod"}
    )
    assert upload.status_code == 201
    # The upload's announce job queues the notification; its first try then fails.
    for _ in range(200):
        peer = (await a.admin.get("/api/admin/registered_ods")).json()["items"][0]
        if peer["last_error"] and peer["pending_to"]:
            break
        await asyncio.sleep(0.05)
    assert peer["pending_to"] == 1
    assert peer["reachable"] is False
    assert "ods-b.test" in peer["last_error"]


async def test_a_replayed_or_altered_peer_request_is_refused(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    assert (await a.register_with(b)).status_code == 201
    link = await links.link_by_iss(a.context, b.context.iss)
    assert link is not None
    me = await get_identity(a.context.db, a.context.cipher)
    body = json.dumps(registration.server_card(me, None)).encode()
    headers = signing.sign(
        link.secret,
        method="POST",
        target="/api/ods/hello",
        body=body,
        sender=a.context.iss,
        receiver=b.context.iss,
    )
    headers["Content-Type"] = "application/json"
    async with httpx.AsyncClient(transport=mesh.transport) as raw:
        first = await raw.post(f"{b.url}/api/ods/hello", content=body, headers=headers)
        assert first.status_code == 200, first.text
        replay = await raw.post(f"{b.url}/api/ods/hello", content=body, headers=headers)
        assert replay.status_code == 401
        assert "replayed" in replay.json()["message"]
        fresh = signing.sign(
            link.secret,
            method="POST",
            target="/api/ods/hello",
            body=body,
            sender=a.context.iss,
            receiver=b.context.iss,
        )
        altered = await raw.post(
            f"{b.url}/api/ods/hello?extra=1",
            content=body,
            headers=fresh | {"Content-Type": "application/json"},
        )
        assert altered.status_code == 401
        assert altered.json()["message"] == OUTSIDER
