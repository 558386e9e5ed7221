"""Deleting a package removes its file without ever touching a newer file of that name."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from ods.app import create_app
from ods.core.config import Settings
from ods.core.context import Context
from tests.helpers.packages import set_status, uploaded


async def test_delete_leaves_nothing_behind_and_a_new_upload_stays(
    admin_client: httpx.AsyncClient, app: FastAPI
) -> None:
    context: Context = app.state.context
    await uploaded(admin_client, "tool.pkg", b"version 1")
    assert (await admin_client.delete("/api/admin/packages/tool.pkg")).status_code == 204
    assert not context.files.published("tool.pkg").exists()
    assert list(context.files.staging_dir.iterdir()) == []

    await uploaded(admin_client, "tool.pkg", b"version 2")
    assert context.files.published("tool.pkg").read_bytes() == b"version 2"


async def test_a_withdrawn_file_left_by_a_crash_is_removed_at_start(settings: Settings) -> None:
    settings.staging_dir.mkdir(parents=True, exist_ok=True)
    stray = settings.staging_dir / "deleted-28f7c0aa-8f1e-4c1e-9a57-2b1d5e9f7c11.part"
    stray.write_bytes(b"old package")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert not stray.exists()


async def test_deleting_a_withdrawn_package_removes_its_file_and_version_name(
    admin_client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    """A package withdrawn by its stage keeps its file (peers may still fetch it): a
    delete must take that file, and its name under versions/, as it does a Public one's."""
    context: Context = app.state.context
    package = await uploaded(admin_client, "held.pkg", b"withdrawn here")
    version = context.files.version(package["sha1"], "held.pkg")
    assert version.exists()
    await set_status(settings, "held.pkg", "Withdrawn")
    assert (await admin_client.delete("/api/admin/packages/held.pkg")).status_code == 204
    assert not context.files.published("held.pkg").exists()
    assert not version.exists()
    assert list(context.files.staging_dir.iterdir()) == []
