"""Jamf Pro's path, /<ODS_JAMF_SHARE_NAME>/Packages/<filename>: what /share serves, as /share.

The download code is /share's own (tests/packages/test_share.py covers it on
every database); these tests check that the second path reaches all of it,
with a share name other than the default. SQLite only: nothing here differs
between databases.
"""

from __future__ import annotations

import hashlib

import httpx
import pytest
from fastapi import FastAPI

from ods.core.config import Settings
from tests.helpers.api import anonymous, assert_error
from tests.helpers.packages import MIB, content_of, set_status, uploaded

SHARE_NAME = "JamfShare_2"
JAMF = f"/{SHARE_NAME}/Packages"
SIZE = MIB + 777
CONTENT = content_of(SIZE, seed=14)
SHA1 = hashlib.sha1(CONTENT, usedforsecurity=False).hexdigest()
SAME_HEADERS = (
    "content-length",
    "content-type",
    "etag",
    "last-modified",
    "accept-ranges",
    "content-disposition",
    "cache-control",
)


@pytest.fixture
def database_backend() -> str:
    return "sqlite"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"jamf_share_name": SHARE_NAME})


@pytest.fixture
async def published(admin_client: httpx.AsyncClient) -> str:
    await uploaded(admin_client, "NoMAD.pkg", CONTENT)
    return "NoMAD.pkg"


async def test_the_share_name_path_serves_what_share_serves(app: FastAPI, published: str) -> None:
    async with anonymous(app) as mac:
        share = await mac.get(f"/share/{published}")
        jamf = await mac.get(f"{JAMF}/{published}")
        assert jamf.status_code == 200
        assert jamf.content == CONTENT
        for header in SAME_HEADERS:
            assert jamf.headers[header] == share.headers[header], header
        assert jamf.headers["etag"] == f'"{SHA1}"'

        head = await mac.head(f"{JAMF}/{published}")
        assert head.status_code == 200
        assert head.content == b""
        for header in SAME_HEADERS:
            assert head.headers[header] == share.headers[header], header

        ranged = await mac.get(f"{JAMF}/{published}", headers={"Range": "bytes=1048576-"})
        assert ranged.status_code == 206
        assert ranged.content == CONTENT[MIB:]
        assert ranged.headers["content-range"] == f"bytes {MIB}-{SIZE - 1}/{SIZE}"
        head_range = await mac.head(f"{JAMF}/{published}", headers={"Range": "bytes=0-9"})
        assert head_range.status_code == 206
        assert head_range.headers["content-length"] == "10"
        stale = await mac.get(
            f"{JAMF}/{published}", headers={"Range": "bytes=0-9", "If-Range": '"old"'}
        )
        assert stale.status_code == 200
        assert stale.content == CONTENT
        outside = await mac.get(f"{JAMF}/{published}", headers={"Range": f"bytes={SIZE}-"})
        assert_error(outside, 416, "range_not_satisfiable")

        for method in ("GET", "HEAD"):
            cached = await mac.request(
                method, f"{JAMF}/{published}", headers={"If-None-Match": f'"{SHA1}"'}
            )
            assert cached.status_code == 304, method
            assert cached.content == b""
            assert cached.headers["etag"] == f'"{SHA1}"'

        # Bytes sent from this path count as served to clients, like /share's.
        before = await served_to_clients(mac)
        await mac.get(f"{JAMF}/{published}")
        await mac.get(f"{JAMF}/{published}", headers={"Range": "bytes=0-99"})
        assert await served_to_clients(mac) - before == SIZE + 100


async def served_to_clients(client: httpx.AsyncClient) -> float:
    metrics = (await client.get("/metrics")).text
    prefix = 'ods_bytes_served_total{to="clients"}'
    return next(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(prefix))


REFUSED = [
    (f"{JAMF}/Other.pkg", 404),
    (f"{JAMF}/nomad.pkg", 404),
    (f"{JAMF}/.hidden", 400),
    (f"{JAMF}/a%00b.pkg", 400),
    (f"{JAMF}/NoMAD..pkg", 400),
    (f"{JAMF}/a%2Fb.pkg", 404),
    (f"{JAMF}/..%2FNoMAD.pkg", 404),
    (f"{JAMF}/", 404),
    # Only the configured share name, and only its Packages folder.
    ("/CasperShare/Packages/NoMAD.pkg", 404),
    (f"/{SHARE_NAME.lower()}/Packages/NoMAD.pkg", 404),
    (f"/{SHARE_NAME}/Scripts/NoMAD.pkg", 404),
    (f"/{SHARE_NAME}/NoMAD.pkg", 404),
]


async def test_unknown_bad_and_unpublished_names_are_refused(
    client: httpx.AsyncClient, settings: Settings, published: str
) -> None:
    for path, status in REFUSED:
        response = await client.get(path)
        code = "invalid_input" if status == 400 else "not_found"
        assert_error(response, status, code, where=path)
        assert CONTENT[:64] not in response.content
        assert (await client.head(path)).status_code == status, path

    for unpublished in ("Publishing", "Failed", "Downloading"):
        await set_status(settings, published, unpublished)
        assert_error(await client.get(f"{JAMF}/{published}"), 404, "not_found", published)
        assert (await client.head(f"{JAMF}/{published}")).status_code == 404
    await set_status(settings, published, "Public")
    assert (await client.get(f"{JAMF}/{published}")).status_code == 200


class TestShareRequiresLogin:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"share_requires_login": True})

    async def test_the_share_name_path_needs_a_login_too(
        self, admin_client: httpx.AsyncClient, app: FastAPI, published: str
    ) -> None:
        async with anonymous(app) as nobody:
            refused = await nobody.get(f"{JAMF}/{published}")
            assert_error(refused, 401, "unauthorized", "ODS_SHARE_REQUIRES_LOGIN")
            assert (await nobody.head(f"{JAMF}/{published}")).status_code == 401
        response = await admin_client.get(f"{JAMF}/{published}")
        assert response.status_code == 200
        assert response.content == CONTENT


class TestAccelRedirect:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"accel_redirect": "/_ods_share/"})

    async def test_nginx_is_told_to_send_the_file(
        self, client: httpx.AsyncClient, published: str
    ) -> None:
        for method in ("GET", "HEAD"):
            response = await client.request(method, f"{JAMF}/{published}")
            assert response.status_code == 200
            assert response.headers["x-accel-redirect"] == "/_ods_share/NoMAD.pkg"
            assert response.headers["etag"] == f'"{SHA1}"'
            assert response.content == b""
        unknown = await client.get(f"{JAMF}/Other.pkg")
        assert_error(unknown, 404, "not_found")
        assert "x-accel-redirect" not in unknown.headers
