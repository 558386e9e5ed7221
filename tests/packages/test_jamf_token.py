"""Downloads secured by Jamf Pro's JSON Web Token (ODS_JAMF_JWT_PUBLIC_KEY).

Every download, from /share and from /<share name>/Packages, GET and HEAD,
ranged or not, needs a token Jamf Pro signed: RS256 with the configured key,
`iss` JSS, `sub` AppManifest, not expired (60 s leeway). Every other token is
refused with 401 in the one error shape, with a short reason and never the
token. SQLite only: the check runs before any database work.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from ods.core.config import Settings
from tests.helpers.api import anonymous, assert_error
from tests.helpers.jamf_tokens import (
    alg_none_token,
    claims,
    hs256_with_public_key,
    jamf_key,
    jamf_token,
    public_pem,
)
from tests.helpers.packages import content_of, uploaded

CONTENT = content_of(300_000, seed=15)
SHA1 = hashlib.sha1(CONTENT, usedforsecurity=False).hexdigest()
PATHS = ("/share/NoMAD.pkg", "/CasperShare/Packages/NoMAD.pkg")


@pytest.fixture
def database_backend() -> str:
    return "sqlite"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"jamf_jwt_public_key": public_pem(jamf_key())})


@pytest.fixture
async def mac(admin_client: httpx.AsyncClient, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client without a login, NoMAD.pkg published."""
    await uploaded(admin_client, "NoMAD.pkg", CONTENT)
    async with anonymous(app) as client:
        yield client


def with_token(path: str, token: str) -> str:
    return f"{path}?token={quote(token, safe='')}"


async def test_a_token_jamf_pro_signed_opens_every_download(mac: httpx.AsyncClient) -> None:
    token = jamf_token()
    for path in PATHS:
        full = await mac.get(with_token(path, token))
        assert full.status_code == 200, full.text
        assert full.content == CONTENT
        assert full.headers["etag"] == f'"{SHA1}"'
        head = await mac.head(with_token(path, token))
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(CONTENT))
        ranged = await mac.get(with_token(path, token), headers={"Range": "bytes=10-19"})
        assert ranged.status_code == 206
        assert ranged.content == CONTENT[10:20]
        cached = await mac.get(with_token(path, token), headers={"If-None-Match": f'"{SHA1}"'})
        assert cached.status_code == 304
    # Expired, but within the leeway for clocks that differ a little.
    recent = jamf_token(**claims(expires_in=-30))
    assert (await mac.get(with_token(PATHS[1], recent))).status_code == 200
    # Claims Jamf Pro does not send do no harm.
    extra = jamf_token(**claims(iat=0, jti="x"))
    assert (await mac.get(with_token(PATHS[0], extra))).status_code == 200


def refusals() -> list[tuple[str, str | None, str]]:
    """(case, token or None for no token, a word the refusal names)."""
    pem = public_pem(jamf_key())
    return [
        ("missing", None, "missing"),
        ("empty", "", "missing"),
        ("expired", jamf_token(**claims(expires_in=-61)), "expired"),
        ("expired long ago", jamf_token(**claims(exp=1503324314)), "expired"),
        ("another key", jamf_token(jamf_key("someone else")), "signed"),
        ("wrong iss", jamf_token(**claims(iss="JSS2")), "issued"),
        ("wrong sub", jamf_token(**claims(sub="Other")), "AppManifest"),
        ("no exp", jamf_token(**claims(exp=None)), "exp"),
        ("no iss", jamf_token(**claims(iss=None)), "iss"),
        ("no sub", jamf_token(**claims(sub=None)), "sub"),
        ("not yet valid", jamf_token(**claims(nbf=2**33)), "not valid yet"),
        ("alg none", alg_none_token(), "RS256"),
        ("HS256 with the public key", hs256_with_public_key(pem), "RS256"),
        ("malformed", "not-a-token", "JSON Web Token"),
        ("three garbled parts", "eyJhbGciOiJSUzI1NiJ9.e30.AAAA!", "JSON Web Token"),
        ("too long", "a" * 9000, "too long"),
    ]


async def test_every_other_token_is_refused(mac: httpx.AsyncClient) -> None:
    for case, token, word in refusals():
        for path in [*PATHS, "/share/Unknown.pkg"]:
            url = path if token is None else with_token(path, token)
            where = f"{case} {path}"
            response = await mac.get(url, headers={"Range": "bytes=0-9"})
            body = assert_error(response, 401, "unauthorized", word, where=where)
            assert "ODS_JAMF_JWT_PUBLIC_KEY" in body["message"], where
            if token:
                assert token not in response.text, where
            assert CONTENT[:10] not in response.content, where
            head = await mac.head(url)
            assert head.status_code == 401, where
            assert head.content == b"", where


async def test_a_login_does_not_replace_the_token(admin_client: httpx.AsyncClient) -> None:
    await uploaded(admin_client, "NoMAD.pkg", CONTENT)
    response = await admin_client.get(PATHS[0])
    assert_error(response, 401, "unauthorized", "missing")


class TestWithLoginRequiredToo:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"share_requires_login": True})

    async def test_a_download_needs_both(
        self, admin_client: httpx.AsyncClient, mac: httpx.AsyncClient
    ) -> None:
        token = jamf_token()
        refused = await mac.get(with_token(PATHS[1], token))
        assert_error(refused, 401, "unauthorized", "ODS_SHARE_REQUIRES_LOGIN")
        assert_error(await admin_client.get(PATHS[1]), 401, "unauthorized", "missing")
        both = await admin_client.get(with_token(PATHS[1], token))
        assert both.status_code == 200
        assert both.content == CONTENT


class TestAccelRedirect:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"accel_redirect": "/_ods_share/"})

    async def test_nginx_is_told_to_send_the_file_only_after_the_check(
        self, mac: httpx.AsyncClient
    ) -> None:
        for path in PATHS:
            refused = await mac.get(path)
            assert_error(refused, 401, "unauthorized")
            assert "x-accel-redirect" not in refused.headers
            allowed = await mac.get(with_token(path, jamf_token()))
            assert allowed.headers["x-accel-redirect"] == "/_ods_share/NoMAD.pkg"
