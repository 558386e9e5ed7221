"""Packages for the tests: reproducible content, hand-built multipart bodies, uploads.

The multipart helpers build bodies by hand, so that tests can put parts in any
order, cut bodies short and send names a browser would refuse to.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from sqlalchemy import update

from ods.core.config import Settings
from ods.core.db import Database
from ods.core.models import Package

MIB = 1024 * 1024
BOUNDARY = "ods-test-boundary-5e1f"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"

Part = tuple[str, str | None, bytes]


def stored_uuid(api_uuid: object) -> str:
    """A package uuid as the admin API shows it (hex), as the database, staging
    files, jobs and the peer protocol spell it (dashed)."""
    return str(uuid.UUID(str(api_uuid)))


def content_of(size: int, seed: int = 0) -> bytes:
    """Reproducible bytes that differ for each seed."""
    return random.Random(seed).randbytes(size)


def file_part(filename: str, content: bytes, name: str = "file") -> Part:
    return (name, filename, content)


def field_part(name: str, value: str) -> Part:
    return (name, None, value.encode())


def multipart(parts: Sequence[Part], *, boundary: str = BOUNDARY, closed: bool = True) -> bytes:
    """A multipart/form-data body; filenames go into the header as raw UTF-8, like browsers."""
    body = bytearray()
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{boundary}\r\n".encode()
        body += b"Content-Disposition: " + disposition.encode() + b"\r\n"
        if filename is not None:
            body += b"Content-Type: application/octet-stream\r\n"
        body += b"\r\n" + content + b"\r\n"
    if closed:
        body += f"--{boundary}--\r\n".encode()
    return bytes(body)


async def post_form(
    client: httpx.AsyncClient,
    parts: Sequence[Part],
    *,
    path: str = "/api/admin/upload",
    params: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        path, content=multipart(parts), headers={"Content-Type": CONTENT_TYPE}, params=params
    )


async def upload(
    client: httpx.AsyncClient,
    filename: str,
    content: bytes,
    *,
    stage: str | None = "Prod",
    replace: bool = False,
    path: str = "/api/admin/upload",
) -> httpx.Response:
    parts = [] if stage is None else [field_part("stage", stage)]
    parts.append(file_part(filename, content))
    if replace:
        parts.append(field_part("replace", "true"))
    return await post_form(client, parts, path=path)


async def uploaded(
    client: httpx.AsyncClient, filename: str, content: bytes, stage: str = "Prod"
) -> dict[str, Any]:
    """Upload and insist it worked; the 201 body."""
    response = await upload(client, filename, content, stage=stage)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def staged_files(settings: Settings) -> list[str]:
    return sorted(path.name for path in settings.staging_dir.iterdir())


def shared_files(settings: Settings) -> list[str]:
    return sorted(path.name for path in settings.share_dir.iterdir())


async def assert_nothing_written(
    admin_client: httpx.AsyncClient, settings: Settings, *, shared: Sequence[str] = ()
) -> None:
    """No package row besides the `shared` ones, no other file in the share dir, and
    nothing left in the staging dir."""
    listing = (await admin_client.get("/api/admin/packages")).json()
    assert sorted(item["filename"] for item in listing["items"]) == sorted(shared)
    assert listing["total"] == len(shared)
    assert shared_files(settings) == sorted(shared)
    assert staged_files(settings) == []


def uploaded_blocking(
    client: httpx.Client, filename: str, content: bytes, stage: str
) -> dict[str, Any]:
    """`uploaded` for a blocking client (browser tests, where Playwright's loop runs),
    through POST /api/admin/packages, insisting the package is Public at once; the 201 body."""
    answer = client.post(
        "/api/admin/packages",
        files={"file": (filename, content, "application/octet-stream")},
        data={"stage": stage},
    )
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    assert (result["filename"], result["stage"], result["status"]) == (filename, stage, "Public")
    return result


async def set_status(settings: Settings, filename: str, status: str) -> None:
    """Change a package's status the way another process of the site would: through a
    database connection of its own, which the server under test hears nothing of."""
    assert settings.database_url is not None
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            await session.execute(
                update(Package).where(Package.filename == filename).values(status=status)
            )
    finally:
        await db.dispose()
