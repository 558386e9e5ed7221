"""A publish that fails after its row is written rolls back at once: no row stays
Publishing, and the same upload can be sent again right away.

The failure is a real one: a directory stands where the file is to be renamed to.
"""

from __future__ import annotations

import shutil

import httpx
from fastapi import FastAPI

from ods.core.config import Settings
from ods.core.context import Context
from tests.helpers.api import assert_error
from tests.helpers.packages import MIB, content_of, staged_files, upload, uploaded


async def test_a_failed_publish_can_be_uploaded_again_at_once(
    admin_client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    context: Context = app.state.context
    in_the_way = context.files.published("Blocked.pkg")
    in_the_way.mkdir(parents=True)
    (in_the_way / "something").write_bytes(b"not ours")
    content = content_of(MIB + 5, seed=61)

    response = await upload(admin_client, "Blocked.pkg", content)
    assert_error(response, 500, "server_misconfigured", "share dir", "upload it again")
    package = (await admin_client.get("/api/admin/packages/Blocked.pkg")).json()
    assert package["status"] == "Failed"
    assert package["status_reason"].startswith("Publishing failed (Is a directory)")
    assert staged_files(settings) == []
    # Sent again at once, it is tried again (not 409 "being published"): the directory
    # is still in the way.
    assert_error(await upload(admin_client, "Blocked.pkg", content), 500, "server_misconfigured")

    shutil.rmtree(in_the_way)
    again = await uploaded(admin_client, "Blocked.pkg", content)
    assert again["status"] == "Public"
    served = await admin_client.get("/share/Blocked.pkg")
    assert served.status_code == 200
    assert served.content == content
    assert staged_files(settings) == []


async def test_a_failed_replacement_can_be_sent_again_at_once(
    admin_client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    context: Context = app.state.context
    await uploaded(admin_client, "Tool.pkg", b"version 1")
    published = context.files.published("Tool.pkg")
    published.unlink()
    published.mkdir()
    (published / "something").write_bytes(b"not ours")

    response = await upload(admin_client, "Tool.pkg", b"version 2", replace=True)
    assert_error(response, 500, "server_misconfigured", "share dir")
    package = (await admin_client.get("/api/admin/packages/Tool.pkg")).json()
    assert package["status"] == "Failed"
    assert staged_files(settings) == []

    shutil.rmtree(published)
    # A Failed version serves nothing: the upload takes its place unasked.
    again = await uploaded(admin_client, "Tool.pkg", b"version 2")
    assert again["status"] == "Public"
    assert (await admin_client.get("/share/Tool.pkg")).content == b"version 2"
    assert (await admin_client.delete("/api/admin/packages/Tool.pkg")).status_code == 204
