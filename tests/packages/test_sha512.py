"""SHA-512 for versions stored before ODS kept it: worked out from the published file."""

from __future__ import annotations

import hashlib

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from ods.core.context import Context
from ods.core.models import Package
from ods.core.statuses import Status
from ods.packages.sha512 import fill_missing
from tests.helpers.packages import MIB, content_of, uploaded


async def test_versions_without_sha512_get_it_from_their_file_and_others_are_left(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    context: Context = app.state.context
    old = content_of(2 * MIB + 5, seed=3)
    gone = content_of(1000, seed=4)
    first = await uploaded(admin_client, "Old.pkg", old)
    second = await uploaded(admin_client, "Gone.pkg", gone)
    async with context.db.transaction() as session:
        await session.execute(update(Package).values(sha512=None))
    # A file that is not the row's version (changed on disk) is never taken for it.
    context.files.published("Gone.pkg").write_bytes(b"something else")

    looked = await fill_missing(context)
    assert looked == [first["id"], second["id"]]
    detail = (await admin_client.get("/api/admin/packages/Old.pkg")).json()
    assert detail["sha512"] == hashlib.sha512(old).hexdigest()
    assert (await admin_client.get("/api/admin/packages/Gone.pkg")).json()["sha512"] is None
    # Resumable: a later pass after the last id looks at nothing more; from the start,
    # only the version still without one.
    assert await fill_missing(context, after=second["id"]) == []
    assert await fill_missing(context) == [second["id"]]

    async with context.db.transaction() as session:
        await session.execute(
            update(Package)
            .where(Package.id == first["id"])
            .values(sha512=None, status=Status.FAILED.value)
        )
    assert await fill_missing(context) == [second["id"]]


async def test_uploading_the_same_file_again_fills_a_missing_sha512(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    context: Context = app.state.context
    content = content_of(MIB + 1, seed=5)
    await uploaded(admin_client, "Same.pkg", content)
    async with context.db.transaction() as session:
        await session.execute(update(Package).values(sha512=None))
    again = await uploaded(admin_client, "Same.pkg", content)
    assert again["sha512"] == hashlib.sha512(content).hexdigest()
