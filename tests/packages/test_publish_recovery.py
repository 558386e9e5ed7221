"""A restart finishes a publish that a crash interrupted, and clears abandoned uploads.

Each test stops the app, leaves the data dir and database the way a crash at one
point of `publish_upload` would, starts the app again and looks at the result.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from ods.app import create_app
from ods.core.config import Settings
from ods.core.db import Database
from ods.core.models import Job, Package, utcnow
from ods.jobs import runner as jobs
from ods.jobs.kinds import Fetch
from tests.helpers.api import NEW_PASSWORD, assert_error, login
from tests.helpers.packages import (
    MIB,
    assert_nothing_written,
    content_of,
    shared_files,
    staged_files,
    stored_uuid,
    upload,
    uploaded,
)


@pytest.fixture
def server_settings(settings: Settings) -> Settings:
    """The test settings with an admin password set at first start, so that every
    start of the app can log straight in."""
    return settings.model_copy(update={"admin_password": NEW_PASSWORD})


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app (its lifespan runs recovery), yield an admin client, stop it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ods.test") as client:
            token = await login(client, "admin", NEW_PASSWORD)
            client.headers["Authorization"] = f"Bearer {token}"
            yield client


async def set_row(settings: Settings, filename: str, **values: Any) -> None:
    assert settings.database_url is not None
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            await session.execute(
                update(Package).where(Package.filename == filename).values(**values)
            )
    finally:
        await db.dispose()


async def first_upload(settings: Settings, filename: str, content: bytes) -> dict[str, Any]:
    async with running(settings) as client:
        return await uploaded(client, filename, content)


async def test_publishing_row_with_its_staged_file_is_published(
    server_settings: Settings,
) -> None:
    content = content_of(2 * MIB + 17, seed=41)
    result = await first_upload(server_settings, "Crash.pkg", content)
    staged = server_settings.staging_dir / f"upload-{stored_uuid(result['uuid'])}.part"
    (server_settings.share_dir / "Crash.pkg").rename(staged)
    await set_row(server_settings, "Crash.pkg", status="Publishing")

    async with running(server_settings) as client:
        package = (await client.get("/api/admin/packages/Crash.pkg")).json()
        assert package["status"] == "Public"
        assert package["uuid"] == result["uuid"]
        assert package["status_reason"] is None
        assert (server_settings.share_dir / "Crash.pkg").read_bytes() == content
        assert staged_files(server_settings) == []
        served = await client.get("/share/Crash.pkg")
        assert served.status_code == 200
        assert served.content == content
        assert served.headers["etag"] == f'"{result["sha1"]}"'


async def test_publishing_row_whose_file_was_renamed_becomes_public(
    server_settings: Settings,
) -> None:
    content = content_of(5000, seed=42)
    await first_upload(server_settings, "Renamed.pkg", content)
    await set_row(server_settings, "Renamed.pkg", status="Publishing")

    async with running(server_settings) as client:
        package = (await client.get("/api/admin/packages/Renamed.pkg")).json()
        assert package["status"] == "Public"
        assert (await client.get("/share/Renamed.pkg")).content == content
        await assert_nothing_written(client, server_settings, shared=["Renamed.pkg"])


async def test_interrupted_replace_serves_the_new_version(server_settings: Settings) -> None:
    old = content_of(MIB + 1, seed=43)
    new = content_of(MIB + 2, seed=44)
    async with running(server_settings) as client:
        await uploaded(client, "Tool.pkg", old)
        replaced = (await upload(client, "Tool.pkg", new, replace=True)).json()
    staged = server_settings.staging_dir / f"upload-{stored_uuid(replaced['uuid'])}.part"
    (server_settings.share_dir / "Tool.pkg").rename(staged)
    (server_settings.share_dir / "Tool.pkg").write_bytes(old)
    await set_row(server_settings, "Tool.pkg", status="Publishing")

    async with running(server_settings) as client:
        package = (await client.get("/api/admin/packages/Tool.pkg")).json()
        assert package["status"] == "Public"
        assert package["sha1"] == hashlib.sha1(new, usedforsecurity=False).hexdigest()
        served = await client.get("/share/Tool.pkg")
        assert served.content == new
        assert served.headers["etag"] == f'"{package["sha1"]}"'
        assert staged_files(server_settings) == []


async def test_publishing_row_without_a_file_is_failed_and_can_be_uploaded_again(
    server_settings: Settings,
) -> None:
    content = content_of(3000, seed=45)
    await first_upload(server_settings, "Lost.pkg", content)
    (server_settings.share_dir / "Lost.pkg").unlink()
    await set_row(server_settings, "Lost.pkg", status="Publishing")

    async with running(server_settings) as client:
        package = (await client.get("/api/admin/packages/Lost.pkg")).json()
        assert package["status"] == "Failed"
        assert "lost" in package["status_reason"]
        assert_error(await client.get("/share/Lost.pkg"), 404, "not_found")
        failed = await client.get("/api/admin/packages", params={"status": "Failed"})
        assert [item["filename"] for item in failed.json()["items"]] == ["Lost.pkg"]

        again = await uploaded(client, "Lost.pkg", content)
        assert again["status"] == "Public"
        package = (await client.get("/api/admin/packages/Lost.pkg")).json()
        assert package["status"] == "Public"
        assert package["status_reason"] is None
        assert (await client.get("/share/Lost.pkg")).content == content


async def test_stray_staged_uploads_are_removed_and_other_files_kept(
    server_settings: Settings,
) -> None:
    async with running(server_settings) as client:
        await uploaded(client, "Keep.pkg", b"keep")
    stray = server_settings.staging_dir / "upload-0b3e6a8c-5d1f-4c7e-9a2b-1f0e9d8c7b6a.part"
    stray.write_bytes(content_of(MIB + 3, seed=46))
    fetching = "5a4f3e2d-1c0b-4a9e-8d7c-6b5a4f3e2d1c"
    download = server_settings.staging_dir / f"download-{fetching}.part"
    download.write_bytes(b"a peer's copy in flight")
    await fetch_waiting_to_retry(server_settings, fetching)

    async with running(server_settings) as client:
        assert not stray.exists()
        assert download.exists()
        await assert_nothing_written_but(client, server_settings)


async def fetch_waiting_to_retry(settings: Settings, uuid: str) -> None:
    """A fetch of `uuid` that waits out its back-off: it resumes from its staging file."""
    assert settings.database_url is not None
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            key = await jobs.add_job(session, Fetch(uuid=uuid, peer="a" * 32))
            later = utcnow() + dt.timedelta(hours=1)
            await session.execute(update(Job).where(Job.key == key).values(run_after=later))
    finally:
        await db.dispose()


async def assert_nothing_written_but(client: httpx.AsyncClient, settings: Settings) -> None:
    listing = (await client.get("/api/admin/packages")).json()
    assert [item["filename"] for item in listing["items"]] == ["Keep.pkg"]
    assert listing["items"][0]["status"] == "Public"
    assert shared_files(settings) == ["Keep.pkg"]
    assert [name for name in staged_files(settings) if name.startswith("upload-")] == []


async def test_package_being_published_cannot_be_deleted_or_uploaded_over(
    server_settings: Settings,
) -> None:
    async with running(server_settings) as client:
        await uploaded(client, "Busy.pkg", b"busy")
        await set_row(server_settings, "Busy.pkg", status="Publishing")
        response = await client.delete("/api/admin/packages/Busy.pkg")
        assert_error(response, 409, "conflict", "being published")
        response = await upload(client, "Busy.pkg", b"other content", replace=True)
        assert_error(response, 409, "conflict", "being published")
        assert_error(await client.get("/share/Busy.pkg"), 404, "not_found")
        assert shared_files(server_settings) == ["Busy.pkg"]
        assert staged_files(server_settings) == []

    async with running(server_settings) as client:
        assert (await client.get("/api/admin/packages/Busy.pkg")).json()["status"] == "Public"
        assert (await client.delete("/api/admin/packages/Busy.pkg")).status_code == 204
        await assert_nothing_written(client, server_settings)
