"""Package uuids in the admin API: 32 hex digits as the original showed them, either form in.

The database and the peer protocol keep the dashed form (servers of the
previous release send and look up that one); what a client sees is hex.
"""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from ods.core.context import Context
from ods.core.models import Event, Package
from ods.core.stages import Stage
from ods.core.statuses import Status
from ods.events.catalogue import PackageUploaded
from ods.events.log import record
from tests.helpers.packages import stored_uuid, upload, uploaded

HEX = re.compile(r"[0-9a-f]{32}")


def spellings(api_uuid: str) -> list[str]:
    dashed = stored_uuid(api_uuid)
    return [api_uuid, dashed, api_uuid.upper(), dashed.upper()]


async def test_every_answer_shows_the_uuid_as_32_hex_digits(
    admin_client: httpx.AsyncClient, app: FastAPI
) -> None:
    first = await uploaded(admin_client, "NoMAD.pkg", b"version 1")
    replaced = await upload(admin_client, "NoMAD.pkg", b"version 2", replace=True)
    assert replaced.status_code == 201, replaced.text
    second = replaced.json()
    assert HEX.fullmatch(first["uuid"])
    assert HEX.fullmatch(second["uuid"])
    assert second["replaced_uuid"] == first["uuid"]

    listed = (await admin_client.get("/api/admin/packages")).json()["items"]
    assert [package["uuid"] for package in listed] == [second["uuid"]]
    one = (await admin_client.get("/api/admin/packages/NoMAD.pkg")).json()
    assert one["uuid"] == second["uuid"]
    moved = await admin_client.patch("/api/admin/packages/NoMAD.pkg", json={"stage": "Test"})
    assert moved.json()["uuid"] == second["uuid"]

    # Stored as every release has stored it, for the mesh and the signed statements.
    context: Context = app.state.context
    async with context.db.session() as session:
        stored = await session.scalar(select(Package.uuid))
    assert stored == str(uuid.UUID(second["uuid"]))


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_a_package_is_found_by_either_spelling_of_its_uuid(
    admin_client: httpx.AsyncClient, method: str
) -> None:
    body = await uploaded(admin_client, "Tool.pkg", b"tool", stage="Dev")
    for ref in spellings(body["uuid"]):
        response = await admin_client.request(
            method,
            f"/api/admin/packages/{ref}",
            json={"stage": "Test"} if method == "PATCH" else None,
        )
        if method == "DELETE":
            assert response.status_code == 204, response.text
            assert (await admin_client.get("/api/admin/packages/Tool.pkg")).status_code == 404
            return
        assert response.status_code == 200, response.text
        assert response.json()["filename"] == "Tool.pkg"
        assert response.json()["uuid"] == body["uuid"]


async def test_an_unknown_uuid_is_404(admin_client: httpx.AsyncClient) -> None:
    await uploaded(admin_client, "Tool.pkg", b"tool")
    for ref in (uuid.uuid4().hex, str(uuid.uuid4())):
        response = await admin_client.get(f"/api/admin/packages/{ref}")
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


async def test_a_filename_that_looks_like_a_uuid_is_still_a_filename(
    admin_client: httpx.AsyncClient,
) -> None:
    name = uuid.uuid4().hex
    await uploaded(admin_client, name, b"named like a uuid")
    found = await admin_client.get(f"/api/admin/packages/{name}")
    assert found.status_code == 200
    assert found.json()["filename"] == name


async def test_event_data_shows_hex_uuids_also_for_events_recorded_before(
    admin_client: httpx.AsyncClient, app: FastAPI
) -> None:
    body = await uploaded(admin_client, "NoMAD.pkg", b"nomad")
    [event] = (await admin_client.get("/api/admin/events?kind=package.uploaded")).json()["items"]
    assert event["package_uuid"] == body["uuid"]
    assert event["data"]["uuid"] == body["uuid"]

    # A row as the previous release wrote it: dashed in the column and in the data.
    context: Context = app.state.context
    old = str(uuid.uuid4())
    facts = PackageUploaded(
        uuid=old,
        filename="Old.pkg",
        stage=Stage.PROD,
        status=Status.PUBLIC,
        file_size=1,
        sha1="0" * 40,
        sha256="0" * 64,
    )
    async with context.db.transaction() as session:
        await record(session, facts)
    async with context.db.transaction() as session:
        row = await session.scalar(select(Event).where(Event.message.startswith("Old.pkg")))
        assert row is not None
        assert row.data is not None
        row.package_uuid = old
        row.data = row.data.replace(uuid.UUID(old).hex, old)
    events = (await admin_client.get("/api/admin/events?kind=package.uploaded")).json()["items"]
    shown = next(item for item in events if item["data"]["filename"] == "Old.pkg")
    assert shown["package_uuid"] == uuid.UUID(old).hex
    assert shown["data"]["uuid"] == uuid.UUID(old).hex
