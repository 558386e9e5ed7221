"""Downloads through the shipped Nginx config: ODS checks, Nginx sends from versions/.

Nginx asks ODS about each download (a check) and reuses an answer that needed
no decision for a second; the bytes come from DATA_DIR/versions/<sha1>/, a name
that only ever holds that version. So a replaced or deleted package is never
sent under its old ETag, even while Nginx still holds the old answer.
"""

from __future__ import annotations

import hashlib
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers.api import NEW_PASSWORD, bearer, login
from tests.helpers.packages import upload
from tests.helpers.processes.nginx import nginx_in_front_of
from tests.helpers.processes.serve import OdsServer, serving
from tests.helpers.tls import self_signed_certificate

pytestmark = pytest.mark.e2e

FIRST = b"first version " * 4096
SECOND = b"second version " * 4096


@dataclass
class Edge:
    server: OdsServer
    url: str


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Edge]:
    cert, key = self_signed_certificate(tmp_path)
    with (
        serving(
            tmp_path / "data", admin_password=NEW_PASSWORD, ODS_ACCEL_REDIRECT="/_ods_share/"
        ) as server,
        nginx_in_front_of(server.port, server.data_dir, cert, key, tmp_path / "nginx") as nginx,
    ):
        yield Edge(server, nginx.url)


@pytest.fixture
async def admin(edge: Edge) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=edge.server.url, timeout=60) as client:
        client.headers.update(bearer(await login(client, "admin", NEW_PASSWORD)))
        yield client


def mac(edge: Edge, timeout: float = 30) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=edge.url, verify=False, timeout=timeout)  # noqa: S501


async def publish(admin: httpx.AsyncClient, filename: str, content: bytes) -> str:
    """Upload (replacing any version of that name); the SHA1."""
    answer = await upload(admin, filename, content, replace=True)
    assert answer.status_code == 201, answer.text
    sha1: str = answer.json()["sha1"]
    assert sha1 == hashlib.sha1(content, usedforsecurity=False).hexdigest()
    return sha1


def sent_whole(answer: httpx.Response, content: bytes) -> None:
    assert answer.status_code == 200, answer.text[:300]
    assert answer.content == content
    assert answer.headers["etag"] == f'"{hashlib.sha1(content, usedforsecurity=False).hexdigest()}"'


async def test_nginx_sends_the_version_ods_named(edge: Edge, admin: httpx.AsyncClient) -> None:
    sha1 = await publish(admin, "Office Suite.pkg", FIRST)
    data = edge.server.data_dir
    version = data / "versions" / sha1 / "Office Suite.pkg"
    assert version.samefile(data / "share" / "Office Suite.pkg")
    async with mac(edge) as client:
        whole = await client.get("/share/Office%20Suite.pkg")
        sent_whole(whole, FIRST)
        assert whole.headers["server"].startswith("nginx")
        assert whole.headers["content-type"] == "application/octet-stream"
        assert whole.headers["content-disposition"] == (
            "attachment; filename*=utf-8''Office%20Suite.pkg"
        )
        assert whole.headers["cache-control"] == "no-cache"
        last_modified = whole.headers["last-modified"]
        for validator in (f'"{sha1}"', last_modified):
            part = await client.get(
                "/share/Office%20Suite.pkg",
                headers={"Range": "bytes=100-1099", "If-Range": validator},
            )
            assert part.status_code == 206, validator
            assert part.content == FIRST[100:1100]
        stale = await client.get(
            "/share/Office%20Suite.pkg", headers={"Range": "bytes=100-", "If-Range": '"0000"'}
        )
        sent_whole(stale, FIRST)
        head = await client.head("/share/Office%20Suite.pkg")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(FIRST))
        assert head.headers["etag"] == f'"{sha1}"'
        unchanged = await client.get(
            "/share/Office%20Suite.pkg", headers={"If-None-Match": f'"{sha1}"'}
        )
        assert unchanged.status_code == 304
        missing = await client.get("/share/Nothing.pkg")
        assert missing.status_code == 404
        assert missing.json()["error"] == "not_found"
        unsafe = await client.get("/share/..%2Fods.db")
        assert unsafe.status_code in (400, 404)
        assert "error" in unsafe.json()


async def test_a_download_nginx_checked_a_moment_ago_needs_no_ods(
    edge: Edge, admin: httpx.AsyncClient
) -> None:
    """With ODS stopped (SIGSTOP) right after a download, the next one within the second
    is still sent: Nginx reused the check. A slow machine may let the second pass in
    between; then the pair is tried again."""
    await publish(admin, "Busy.pkg", FIRST)
    served_while_stopped = False
    async with mac(edge) as client, mac(edge, timeout=3) as impatient:
        for _ in range(5):
            sent_whole(await client.get("/share/Busy.pkg"), FIRST)
            checked = time.monotonic()
            edge.server.process.send_signal(signal.SIGSTOP)
            try:
                again = await impatient.get("/share/Busy.pkg")
                sent_whole(again, FIRST)
                served_while_stopped = True
                break
            except httpx.TimeoutException:
                # Only allowed when the answer had expired before the second request.
                assert time.monotonic() - checked > 1.0
            finally:
                edge.server.process.send_signal(signal.SIGCONT)
    assert served_while_stopped


async def test_a_new_version_is_never_sent_under_the_old_etag(
    edge: Edge, admin: httpx.AsyncClient
) -> None:
    versions = [FIRST, SECOND, FIRST + b"third", SECOND + b"fourth"]
    async with mac(edge) as client:
        previous: str | None = None
        for content in versions:
            sha1 = await publish(admin, "Browser.pkg", content)
            # Nginx may still hold the check that named the previous version: its name
            # under versions/ is gone, so ODS answers, with the new version.
            sent_whole(await client.get("/share/Browser.pkg"), content)
            if previous is not None:
                resumed = await client.get(
                    "/share/Browser.pkg", headers={"Range": "bytes=10-", "If-Range": previous}
                )
                sent_whole(resumed, content)  # the whole new version, not a piece of it
                assert not (edge.server.data_dir / "versions" / previous.strip('"')).exists()
            previous = f'"{sha1}"'
            sent_whole(await client.get("/share/Browser.pkg"), content)


async def test_a_deleted_package_is_not_sent_after_the_delete(
    edge: Edge, admin: httpx.AsyncClient
) -> None:
    sha1 = await publish(admin, "Old Tool.pkg", FIRST)
    async with mac(edge) as client:
        sent_whole(await client.get("/share/Old%20Tool.pkg"), FIRST)
        deleted = await admin.delete("/api/admin/packages/Old Tool.pkg")
        assert deleted.status_code in (200, 204), deleted.text
        gone = await client.get("/share/Old%20Tool.pkg")
        assert gone.status_code == 404
        assert gone.json()["error"] == "not_found"
    assert not (edge.server.data_dir / "versions" / sha1).exists()
