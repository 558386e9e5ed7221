"""Package records in Jamf Pro, kept by a real app against a stand-in Jamf Pro on loopback."""

from __future__ import annotations

import hashlib

import httpx

from tests.helpers.jamf_pro import JamfPro
from tests.helpers.jamf_steps import configure, until, until_event, until_records
from tests.helpers.packages import content_of, uploaded


async def test_records_follow_uploads_replacements_and_deletes(
    admin_client: httpx.AsyncClient, jamf: JamfPro
) -> None:
    await configure(admin_client, jamf, category="Apps")
    content = content_of(300_000, seed=1)
    await uploaded(admin_client, "Tool.pkg", content, stage="Prod")
    await uploaded(admin_client, "Beta.pkg", content_of(1000, seed=2), stage="Test")

    [record] = await until(lambda: jamf.by_filename("Tool.pkg"))
    assert record["hashType"] == "SHA_512"
    assert record["hashValue"] == hashlib.sha512(content).hexdigest()
    assert record["packageName"] == "Tool.pkg"
    assert record["categoryId"] == "5"
    assert record["priority"] == 10
    [created] = await until_event(admin_client, "jamf.synced")
    assert created["data"]["action"] == "created"

    newer = content_of(200_000, seed=3)
    response = await admin_client.post(
        "/api/admin/upload",
        files={"file": ("Tool.pkg", newer, "application/octet-stream")},
        data={"stage": "Prod", "replace": "true"},
    )
    assert response.status_code == 201, response.text
    newer_sha512 = hashlib.sha512(newer).hexdigest()
    await until(lambda: [r["hashValue"] for r in jamf.by_filename("Tool.pkg")] == [newer_sha512])
    # Updated in place: never deleted and made again while the replacement was published.
    assert jamf.calls("DELETE", "/api/v1/packages") == []
    assert len(jamf.calls("POST", "/api/v1/packages")) == 1
    assert jamf.by_filename("Beta.pkg") == []  # Test is not a listed stage

    deleted = await admin_client.delete("/api/admin/packages/Tool.pkg")
    assert deleted.status_code in (200, 204), deleted.text
    await until(lambda: not jamf.by_filename("Tool.pkg"))
    actions = [e["data"]["action"] for e in await until_event(admin_client, "jamf.synced", 3)]
    assert sorted(actions) == ["created", "deleted", "updated"]
    assert jamf.packages == {}
    # One token served every call.
    assert jamf.token_requests() == 1

    shown = (await admin_client.get("/api/admin/integrations/jamf")).json()
    assert shown["last_outcome"] == "ok"
    assert shown["last_error"] is None
    assert shown["records"] == 0


async def test_leaving_the_listed_stages_deletes_the_record(
    admin_client: httpx.AsyncClient, jamf: JamfPro
) -> None:
    await configure(admin_client, jamf, stages=["Test", "Prod"])
    await uploaded(admin_client, "Moving.pkg", content_of(5000, seed=4), stage="Test")
    await until(lambda: jamf.by_filename("Moving.pkg"))
    changed = await admin_client.patch("/api/admin/packages/Moving.pkg", json={"stage": "Dev"})
    assert changed.status_code == 200, changed.text
    await until(lambda: not jamf.by_filename("Moving.pkg"))


async def test_a_record_ods_did_not_make_gets_the_checksum_but_is_never_deleted(
    admin_client: httpx.AsyncClient, jamf: JamfPro
) -> None:
    theirs = jamf.add_record("Theirs.pkg", notes="made by hand", categoryId="5")
    await configure(admin_client, jamf)
    content = content_of(4000, seed=5)
    await uploaded(admin_client, "Theirs.pkg", content)
    sha512 = hashlib.sha512(content).hexdigest()
    await until(lambda: jamf.packages[theirs]["hashValue"] == sha512)
    [event] = await until_event(admin_client, "jamf.synced")
    assert event["data"]["action"] == "adopted"
    # What the admin set is kept: an update sends the whole record back.
    assert jamf.packages[theirs]["notes"] == "made by hand"
    assert jamf.packages[theirs]["categoryId"] == "5"

    deleted = await admin_client.delete("/api/admin/packages/Theirs.pkg")
    assert deleted.status_code in (200, 204), deleted.text
    await until_records(admin_client, 0)  # forgotten by ODS ...
    drift = await admin_client.post("/api/admin/integrations/jamf/reconcile", json={"repair": True})
    assert drift.status_code == 200, drift.text
    assert drift.json()["orphaned"] == []
    assert theirs in jamf.packages  # ... and left in Jamf Pro
    assert jamf.calls("DELETE", "/api/v1/packages") == []


async def test_jamf_pro_down_is_retried_then_reported(
    admin_client: httpx.AsyncClient, jamf: JamfPro
) -> None:
    await configure(admin_client, jamf)
    jamf.down = True
    await uploaded(admin_client, "Down.pkg", content_of(1000, seed=6))
    [failed] = await until_event(admin_client, "jamf.failed")
    assert failed["data"]["filename"] == "Down.pkg"
    assert "503" in failed["data"]["reason"]
    # Eight tries, each failing at its token request.
    assert jamf.token_requests() == 8
    shown = (await admin_client.get("/api/admin/integrations/jamf")).json()
    assert shown["last_outcome"] == "failed"
    assert "503" in shown["last_error"]

    # Back up: a reconcile finds the package without a record and repairs it.
    jamf.down = False
    drift = await admin_client.post("/api/admin/integrations/jamf/reconcile", json={"repair": True})
    assert drift.status_code == 200, drift.text
    assert drift.json()["missing"] == ["Down.pkg"]
    assert len(jamf.by_filename("Down.pkg")) == 1


async def test_an_expired_token_is_renewed_once(
    admin_client: httpx.AsyncClient, jamf: JamfPro
) -> None:
    await configure(admin_client, jamf)
    await uploaded(admin_client, "First.pkg", content_of(1000, seed=7))
    await until(lambda: jamf.by_filename("First.pkg"))
    assert jamf.token_requests() == 1
    jamf.expire_tokens()
    await uploaded(admin_client, "Second.pkg", content_of(1000, seed=8))
    await until(lambda: jamf.by_filename("Second.pkg"))
    assert jamf.token_requests() == 2
    refused = [r for r in jamf.requests if r.path != "/api/oauth/token"]
    assert sum(1 for r in refused if r.headers.get("authorization", "").startswith("Bearer")) > 2
