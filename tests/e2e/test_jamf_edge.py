"""Jamf Pro's share path and download token through the shipped Nginx config.

One real `ods serve` with ODS_ACCEL_REDIRECT and ODS_JAMF_JWT_PUBLIC_KEY (a
file), behind a real Nginx: ODS checks the token before it hands the file to
Nginx, on /share and on /CasperShare/Packages alike, and Nginx sends the bytes.
The server and Nginx are started once for the module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest

from tests.helpers.api import NEW_PASSWORD, assert_error
from tests.helpers.jamf_tokens import (
    alg_none_token,
    claims,
    hs256_with_public_key,
    jamf_key,
    jamf_token,
    public_pem,
)
from tests.helpers.packages import content_of
from tests.helpers.processes.nginx import nginx_in_front_of
from tests.helpers.processes.serve import serving
from tests.helpers.tls import self_signed_certificate

pytestmark = pytest.mark.e2e

CONTENT = content_of(2 * 1024 * 1024 + 99, seed=16)
SHA1 = hashlib.sha1(CONTENT, usedforsecurity=False).hexdigest()
PATHS = ("/CasperShare/Packages/NoMAD.pkg", "/share/NoMAD.pkg")


@dataclass
class Edge:
    url: str
    ods_url: str


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    work = tmp_path_factory.mktemp("jamf-edge")
    key_file = work / "jamf-jwt.pub.pem"
    key_file.write_text(public_pem(jamf_key()), encoding="ascii")
    cert, key = self_signed_certificate(work)
    with (
        serving(
            work / "data",
            admin_password=NEW_PASSWORD,
            ODS_ACCEL_REDIRECT="/_ods_share/",
            ODS_JAMF_JWT_PUBLIC_KEY=str(key_file),
        ) as server,
        nginx_in_front_of(server.port, server.data_dir, cert, key, work / "nginx") as nginx,
    ):
        with httpx.Client(base_url=server.url, timeout=30) as admin:
            login = admin.post(
                "/api/auth/login", json={"username": "admin", "password": NEW_PASSWORD}
            )
            assert login.status_code == 200, login.text
            admin.headers["Authorization"] = f"Bearer {login.json()['token']}"
            upload = admin.post(
                "/api/admin/upload",
                files={"file": ("NoMAD.pkg", CONTENT, "application/octet-stream")},
            )
            assert upload.status_code in (200, 201), upload.text
        yield Edge(url=nginx.url, ods_url=server.url)


def with_token(path: str, token: str) -> str:
    return f"{path}?token={quote(token, safe='')}"


def through_nginx(edge: Edge) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=edge.url, verify=False, timeout=30)  # noqa: S501


async def test_nginx_sends_the_package_once_ods_accepted_the_token(edge: Edge) -> None:
    token = jamf_token()
    async with through_nginx(edge) as mac:
        for path in PATHS:
            full = await mac.get(with_token(path, token))
            assert full.status_code == 200, full.text[:300]
            assert full.content == CONTENT
            assert full.headers["server"].startswith("nginx")
            assert full.headers["etag"] == f'"{SHA1}"'
            assert "x-accel-redirect" not in full.headers

            head = await mac.head(with_token(path, token))
            assert head.status_code == 200
            assert head.headers["content-length"] == str(len(CONTENT))

            ranged = await mac.get(with_token(path, token), headers={"Range": "bytes=100-1099"})
            assert ranged.status_code == 206
            assert ranged.content == CONTENT[100:1100]
            assert ranged.headers["content-range"] == f"bytes 100-1099/{len(CONTENT)}"

            cached = await mac.get(with_token(path, token), headers={"If-None-Match": f'"{SHA1}"'})
            assert cached.status_code == 304


async def test_nginx_sends_nothing_without_a_good_token(edge: Edge) -> None:
    bad = {
        "missing": None,
        "expired": jamf_token(**claims(expires_in=-120)),
        "another key": jamf_token(jamf_key("someone else")),
        "wrong iss": jamf_token(**claims(iss="Other")),
        "alg none": alg_none_token(),
        "HS256 with the public key": hs256_with_public_key(public_pem(jamf_key())),
        "malformed": "x.y",
    }
    async with through_nginx(edge) as mac:
        for case, token in bad.items():
            for path in [*PATHS, "/CasperShare/Packages/Unknown.pkg"]:
                url = path if token is None else with_token(path, token)
                where = f"{case} {path}"
                response = await mac.get(url, headers={"Range": "bytes=0-1023"})
                assert_error(response, 401, "unauthorized", "ODS_JAMF_JWT_PUBLIC_KEY", where=where)
                assert CONTENT[:1024] not in response.content, where
                assert "x-accel-redirect" not in response.headers, where
                head = await mac.head(url)
                assert head.status_code == 401, where
                assert head.headers.get("content-length") != str(len(CONTENT)), where
        # Nginx's internal location cannot be asked for directly, token or not.
        direct = await mac.get(with_token("/_ods_share/NoMAD.pkg", jamf_token()))
        assert direct.status_code == 404
        assert CONTENT[:1024] not in direct.content


async def test_ods_itself_refuses_the_same_way_without_nginx(edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=edge.ods_url, timeout=30) as mac:
        refused = await mac.get(PATHS[0])
        assert_error(refused, 401, "unauthorized", "missing")
        allowed = await mac.get(with_token(PATHS[0], jamf_token()))
        assert allowed.status_code == 200
        assert allowed.headers["x-accel-redirect"] == "/_ods_share/NoMAD.pkg"
        assert allowed.content == b""
