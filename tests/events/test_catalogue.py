"""The event catalogue: every kind documented and typed, and events carrying their data.

Data is checked where admins and, later, webhooks read it: `GET /api/admin/events`
after a real API action.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ods.core.context import Context
from ods.core.models import Event
from ods.events import catalogue, trust_events
from ods.events.base import EventData
from ods.events.catalogue import CATALOGUE, KINDS, PackageEvent
from ods.events.endpoints import frame
from ods.events.kinds import describe
from ods.events.log import EventFollower
from tests.helpers.api import NEW_PASSWORD, anonymous, login
from tests.helpers.event_samples import (
    SAMPLES,
)
from tests.helpers.packages import content_of, upload, uploaded

# The kinds the event log had before the catalogue: none may disappear or be renamed.
KINDS_BEFORE = {
    "package.uploaded",
    "package.replaced",
    "package.available",
    "package.downloading",
    "package.stage_changed",
    "package.deleted",
    "package.failed",
    "package.conflict",
    "peer.registered",
    "peer.unregistered",
    "peer.reachable",
    "peer.unreachable",
    "server.updated",
    "user.created",
    "user.updated",
    "user.deleted",
    "user.password_changed",
    "token.created",
    "token.revoked",
    "login.failed",
}


# --- the catalogue -------------------------------------------------------------


def test_every_kind_is_listed_once_under_a_dotted_name() -> None:
    names = [event.kind for event in CATALOGUE]
    assert len(names) == len(set(names))
    assert set(KINDS) == set(names)
    for name in names:
        assert re.fullmatch(r"[a-z]+\.[a-z_]+", name), name
        assert KINDS[name].kind == name
    assert set(names) >= KINDS_BEFORE


def test_every_kind_and_field_is_described_for_admins() -> None:
    for event in CATALOGUE:
        assert event.description.strip(), event.kind
        assert "\n" not in event.description, event.kind
        for name, field in event.model_fields.items():
            assert field.description, f"{event.kind}.{name} has no description"


def test_no_kind_carries_a_secret() -> None:
    secret = re.compile(r"^password$|hash|secret|^key$|^token$")
    for event in CATALOGUE:
        for name in event.model_fields:
            assert not secret.search(name), f"{event.kind}.{name}"


def test_the_samples_cover_every_kind() -> None:
    assert {sample.kind for sample, _ in SAMPLES} == set(KINDS)


@pytest.mark.parametrize(
    ("sample", "message"), SAMPLES, ids=[f"{s.kind}-{i}" for i, (s, _) in enumerate(SAMPLES)]
)
def test_each_kind_renders_its_message_and_round_trips_through_json(
    sample: EventData, message: str
) -> None:
    assert sample.message() == message
    stored = sample.model_dump_json()
    assert KINDS[sample.kind].model_validate_json(stored) == sample
    data = json.loads(stored)
    assert KINDS[sample.kind].model_validate(data).message() == message
    assert list(data) == list(type(sample).model_fields)


def test_package_events_name_their_package_version() -> None:
    for sample, _ in SAMPLES:
        if isinstance(sample, catalogue.PackageConflict):
            assert sample.package_uuid == sample.loser_uuid
        elif isinstance(sample, PackageEvent | trust_events.StatementRefused):
            assert sample.package_uuid == sample.uuid
        else:
            assert sample.package_uuid is None


def test_package_facts_name_every_package_field() -> None:
    assert set(catalogue.PackageFacts.__annotations__) == set(PackageEvent.model_fields)


def test_a_kind_is_described_with_its_field_types() -> None:
    described = describe(catalogue.TokenRevoked)
    assert described.kind == "token.revoked"
    assert [(field.name, field.type) for field in described.fields] == [
        ("name", "string"),
        ("username", "string"),
        ("token_kind", 'one of "api", "session"'),
    ]
    stage_changed = {f.name: f.type for f in describe(catalogue.PackageStageChanged).fields}
    assert stage_changed["peer"] == "string or null"
    assert stage_changed["previous_stage"] == 'one of "Dev", "Test", "Prod"'
    changes = {f.name: f.type for f in describe(catalogue.ServerUpdated).fields}["changes"]
    assert changes == "array of object (setting, before, after)"


# --- events through the API ----------------------------------------------------


async def events_of(client: httpx.AsyncClient, kind: str) -> list[dict[str, Any]]:
    response = await client.get("/api/admin/events", params={"kind": kind})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_an_upload_records_the_package_with_its_digests(
    admin_client: httpx.AsyncClient,
) -> None:
    content = content_of(1024 * 1024 + 5)
    body = await uploaded(admin_client, "NoMAD.pkg", content, stage="Test")
    [event] = await events_of(admin_client, "package.uploaded")
    assert event["actor"] == "admin"
    assert event["package_uuid"] == body["uuid"]
    assert event["message"] == "NoMAD.pkg uploaded (Test, 1.0 MB)"
    assert event["data"] == {
        "uuid": body["uuid"],
        "filename": "NoMAD.pkg",
        "stage": "Test",
        "status": "Publishing",
        "file_size": len(content),
        "sha1": hashlib.sha1(content, usedforsecurity=False).hexdigest(),
        "sha256": hashlib.sha256(content).hexdigest(),
    }


async def test_a_replacement_names_the_version_it_replaced(
    admin_client: httpx.AsyncClient,
) -> None:
    first = await uploaded(admin_client, "Tool.pkg", b"version 1")
    response = await upload(admin_client, "Tool.pkg", b"version 2", replace=True)
    assert response.status_code == 201, response.text
    [event] = await events_of(admin_client, "package.replaced")
    assert event["data"]["uuid"] == response.json()["uuid"]
    assert event["data"]["replaced_uuid"] == first["uuid"]
    assert event["data"]["sha256"] == hashlib.sha256(b"version 2").hexdigest()
    assert await events_of(admin_client, "package.uploaded") != []


async def test_a_stage_change_and_a_delete_carry_the_package(
    admin_client: httpx.AsyncClient,
) -> None:
    body = await uploaded(admin_client, "beta.pkg", b"beta build", stage="Dev")
    changed = await admin_client.patch("/api/admin/packages/beta.pkg", json={"stage": "Test"})
    assert changed.status_code == 200, changed.text
    deleted = await admin_client.delete("/api/admin/packages/beta.pkg")
    assert deleted.status_code == 204, deleted.text

    [moved] = await events_of(admin_client, "package.stage_changed")
    assert moved["message"] == "beta.pkg moved from Dev to Test"
    assert moved["data"]["previous_stage"] == "Dev"
    assert moved["data"]["stage"] == "Test"
    assert moved["data"]["status"] == "Public"
    assert (moved["data"]["peer"], moved["data"]["peer_iss"]) == (None, None)

    [gone] = await events_of(admin_client, "package.deleted")
    assert gone["package_uuid"] == body["uuid"]
    assert gone["data"]["uuid"] == body["uuid"]
    assert gone["data"]["reason"] == "deleted"
    assert gone["data"]["status"] == "Public"
    assert gone["data"]["file_size"] == len(b"beta build")
    assert gone["data"]["peer"] is None


async def test_server_settings_record_each_change(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.post(
        "/api/admin/about/update", json={"name": "Example ODS", "stage": "Dev"}
    )
    assert response.status_code == 201, response.text
    [event] = await events_of(admin_client, "server.updated")
    assert event["message"] == "Server settings: name '' -> 'Example ODS'; stage 'Prod' -> 'Dev'"
    assert event["data"] == {
        "name": "Example ODS",
        "url": "",
        "stage": "Dev",
        "firewalled_mode": False,
        "changes": [
            {"setting": "name", "before": "", "after": "Example ODS"},
            {"setting": "stage", "before": "Prod", "after": "Dev"},
        ],
    }


async def test_account_events_carry_names_and_never_secrets(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    password = "alice's long passphrase"
    reset = "a passphrase the admin chose"
    created = await admin_client.post(
        "/api/admin/users",
        json={
            "username": "alice",
            "password": password,
            "role": "read_only",
            "must_change_password": False,
        },
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    updated = await admin_client.patch(
        f"/api/admin/users/{user_id}", json={"role": "package_manager", "password": reset}
    )
    assert updated.status_code == 200, updated.text
    token = await admin_client.post(
        "/api/admin/tokens", json={"name": "AutoPkg", "expires_days": 30}
    )
    assert token.status_code == 201, token.text
    revoked = await admin_client.delete(f"/api/admin/tokens/{token.json()['id']}")
    assert revoked.status_code == 204, revoked.text
    async with anonymous(app) as nobody:
        refused = await nobody.post(
            "/api/auth/login", json={"username": "alice", "password": "not it"}
        )
    assert refused.status_code == 401
    assert (await admin_client.delete(f"/api/admin/users/{user_id}")).status_code == 204

    by_kind = {
        kind: (await events_of(admin_client, kind))[0]["data"]
        for kind in (
            "user.created",
            "user.updated",
            "user.deleted",
            "token.created",
            "token.revoked",
            "login.failed",
        )
    }
    assert by_kind["user.created"] == {
        "username": "alice",
        "role": "read_only",
        "must_change_password": False,
    }
    assert by_kind["user.updated"] == {
        "username": "alice",
        "role": "package_manager",
        "must_change_password": True,
        "password_reset": True,
    }
    assert by_kind["user.deleted"] == {"username": "alice", "role": "package_manager"}
    assert by_kind["token.created"]["name"] == "AutoPkg"
    assert by_kind["token.created"]["username"] == "admin"
    assert by_kind["token.created"]["expires"] == token.json()["expires"]
    assert by_kind["token.revoked"] == {"name": "AutoPkg", "username": "admin", "token_kind": "api"}
    assert by_kind["login.failed"]["username"] == "alice"
    assert by_kind["login.failed"]["address"]

    everything = (await admin_client.get("/api/admin/events")).text
    for secret in (password, reset, "not it", token.json()["token"]):
        assert secret not in everything


async def test_a_password_change_names_the_user(admin_client: httpx.AsyncClient) -> None:
    [event] = await events_of(admin_client, "user.password_changed")
    assert event["message"] == "Password changed"
    assert event["data"] == {"username": "admin"}
    assert NEW_PASSWORD not in json.dumps(event)


async def test_an_event_recorded_before_the_catalogue_has_empty_data(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    context: Context = app.state.context
    async with context.db.transaction() as session:
        session.add(Event(kind="user.created", message="User bob created", actor="admin"))
    [event] = [e for e in await events_of(admin_client, "user.created") if "bob" in e["message"]]
    assert event["data"] == {}


async def test_the_stream_sends_the_data_the_list_shows(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    await uploaded(admin_client, "Streamed.pkg", b"streamed")
    [listed] = await events_of(admin_client, "package.uploaded")
    context: Context = app.state.context
    follower = EventFollower(context.db, listed["id"] - 1)
    [followed] = [event for event in await follower.poll() if event.id == listed["id"]]
    sent = frame(followed).splitlines()
    assert sent[1] == "event: package.uploaded"
    assert json.loads(sent[2].removeprefix("data: ")) == listed
    assert listed["data"]["sha256"] == hashlib.sha256(b"streamed").hexdigest()


# --- the kind filter and the list of kinds -------------------------------------


async def test_the_kind_filter_refuses_a_kind_the_catalogue_lacks(
    admin_client: httpx.AsyncClient,
) -> None:
    response = await admin_client.get("/api/admin/events", params={"kind": "package.exploded"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_input"
    assert body["details"][0]["field"] == "kind"
    assert "/api/admin/events/kinds" in body["message"]


async def test_the_kinds_list_every_kind_with_its_fields(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.get("/api/admin/events/kinds")
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["kind"] for item in items] == [event.kind for event in CATALOGUE]
    failed = next(item for item in items if item["kind"] == "package.failed")
    assert failed["description"] == catalogue.PackageFailed.description
    assert [field["name"] for field in failed["fields"]] == [
        "uuid",
        "filename",
        "stage",
        "status",
        "file_size",
        "sha1",
        "sha256",
        "reason",
    ]
    assert failed["fields"][-1] == {
        "name": "reason",
        "type": "string",
        "description": "Why the fetch gave up.",
    }


async def test_the_kinds_need_a_login_and_no_more(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    async with anonymous(app) as nobody:
        assert (await nobody.get("/api/admin/events/kinds")).status_code == 401
    created = await admin_client.post(
        "/api/admin/users",
        json={
            "username": "viewer",
            "password": "viewer passphrase",
            "role": "read_only",
            "must_change_password": False,
        },
    )
    assert created.status_code == 201, created.text
    token = await login(admin_client, "viewer", "viewer passphrase")
    response = await admin_client.get(
        "/api/admin/events/kinds", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
