"""A real server killed in the middle of an upload, and a client that hangs up.

Neither may leave a package row, a file in the share dir or, once the server has
started again, anything in the staging dir; the next upload must work.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.helpers.packages import BOUNDARY, CONTENT_TYPE, MIB, content_of, multipart
from tests.helpers.processes.serve import OdsServer, serving, start

PASSWORD = "an end-to-end passphrase"
DECLARED_MIB = 64


@asynccontextmanager
async def admin(server: OdsServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client logged in as admin (ODS_ADMIN_PASSWORD means no forced change)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        response = await client.post(
            "/api/auth/login", json={"username": "admin", "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        assert response.json()["must_change_password"] is False
        client.headers["Authorization"] = f"Bearer {response.json()['token']}"
        yield client


def staged_uploads(server: OdsServer) -> list[Path]:
    return sorted(server.staging_dir.glob("upload-*.part"))


async def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def staged_at_least(server: OdsServer, size: int) -> Callable[[], bool]:
    return lambda: any(path.stat().st_size >= size for path in staged_uploads(server))


async def large_upload(after_mib: int, interrupt: Callable[[], object]) -> AsyncIterator[bytes]:
    """A multipart body that declares a 64 MiB file; `interrupt` runs once `after_mib`
    MiB of it are on their way."""
    yield (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="stage"\r\n\r\nProd\r\n'
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="Big.pkg"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    for index in range(DECLARED_MIB):
        yield content_of(MIB, seed=index)
        if index + 1 == after_mib:
            result = interrupt()
            if asyncio.iscoroutine(result):
                await result
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


async def assert_empty(client: httpx.AsyncClient, server: OdsServer) -> None:
    listing = await client.get("/api/admin/packages")
    assert listing.status_code == 200
    assert listing.json() == {"items": [], "total": 0}
    assert list(server.share_dir.iterdir()) == []
    assert staged_uploads(server) == []


async def upload_works(client: httpx.AsyncClient, server: OdsServer) -> None:
    content = content_of(3 * MIB + 5, seed=99)
    body = multipart(
        [
            ("stage", None, b"Prod"),
            ("file", "After.pkg", content),
        ]
    )
    response = await client.post(
        "/api/admin/upload", content=body, headers={"Content-Type": CONTENT_TYPE}
    )
    assert response.status_code == 201, response.text
    assert response.json()["sha1"] == hashlib.sha1(content, usedforsecurity=False).hexdigest()
    served = await client.get("/share/After.pkg")
    assert served.status_code == 200
    assert served.content == content
    assert (server.share_dir / "After.pkg").read_bytes() == content
    assert staged_uploads(server) == []


@pytest.mark.e2e
async def test_server_killed_mid_upload_leaves_nothing_after_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start(data_dir, admin_password=PASSWORD)

    async def kill_once_staged() -> None:
        await wait_for(staged_at_least(server, 2 * MIB), "the upload to reach staging")
        server.kill()

    try:
        async with admin(server) as client:
            with pytest.raises(httpx.TransportError):
                await client.post(
                    "/api/admin/upload",
                    content=large_upload(4, kill_once_staged),
                    headers={"Content-Type": CONTENT_TYPE},
                )
    finally:
        server.stop()
    assert server.process.returncode == -9
    assert len(staged_uploads(server)) == 1, "the kill should leave a partial upload"
    assert list(server.share_dir.iterdir()) == []

    with serving(data_dir, admin_password=PASSWORD) as restarted:
        async with admin(restarted) as client:
            await assert_empty(client, restarted)
            await upload_works(client, restarted)


class HungUp(Exception):
    """The client gives up on its upload."""


@pytest.mark.e2e
async def test_client_that_hangs_up_leaves_nothing_on_a_running_server(tmp_path: Path) -> None:
    with serving(tmp_path / "data", admin_password=PASSWORD) as server:
        async with admin(server) as client:

            async def hang_up() -> None:
                await wait_for(staged_at_least(server, MIB), "the upload to reach staging")
                raise HungUp

            with pytest.raises(HungUp):
                await client.post(
                    "/api/admin/upload",
                    content=large_upload(3, hang_up),
                    headers={"Content-Type": CONTENT_TYPE},
                )
            await wait_for(lambda: staged_uploads(server) == [], "the staged file to go")
            await assert_empty(client, server)
            await upload_works(client, server)
        assert "Traceback" not in server.output()
        assert "ERROR" not in server.output()
