"""Downloads from /share: full and partial GET, HEAD, validators, protection, Nginx mode."""

from __future__ import annotations

import email.utils
import hashlib

import httpx
import pytest
from fastapi import FastAPI

from ods.core.config import Settings
from tests.helpers.api import anonymous, assert_error
from tests.helpers.packages import MIB, content_of, set_status, uploaded

SIZE = MIB + 4321
CONTENT = content_of(SIZE, seed=31)
SHA1 = hashlib.sha1(CONTENT, usedforsecurity=False).hexdigest()


@pytest.fixture
async def published(admin_client: httpx.AsyncClient) -> str:
    """NoMAD.pkg, public; the filename."""
    await uploaded(admin_client, "NoMAD.pkg", CONTENT)
    return "NoMAD.pkg"


async def test_full_download(client: httpx.AsyncClient, published: str) -> None:
    response = await client.get(f"/share/{published}", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.content == CONTENT
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["etag"] == f'"{SHA1}"'
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-disposition"].startswith("attachment")
    assert "NoMAD.pkg" in response.headers["content-disposition"]
    modified = email.utils.parsedate_to_datetime(response.headers["last-modified"])
    assert modified.tzinfo is not None


async def test_download_needs_no_login_by_default(app: FastAPI, published: str) -> None:
    async with anonymous(app) as nobody:
        response = await nobody.get(f"/share/{published}")
    assert response.status_code == 200
    assert response.content == CONTENT


async def test_head_has_the_headers_and_no_body(client: httpx.AsyncClient, published: str) -> None:
    full = await client.get(f"/share/{published}")
    response = await client.head(f"/share/{published}")
    assert response.status_code == 200
    assert response.content == b""
    for header in ("content-length", "etag", "last-modified", "accept-ranges", "content-type"):
        assert response.headers[header] == full.headers[header], header
    assert response.headers["content-length"] == str(SIZE)


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-19", 10, 19),
        ("bytes=-100", SIZE - 100, SIZE - 1),
        ("bytes=1048576-", MIB, SIZE - 1),
        (f"bytes={SIZE - 10}-{SIZE + 5000}", SIZE - 10, SIZE - 1),
        (f"bytes=-{SIZE + 10}", 0, SIZE - 1),
        ("bytes = 5 - 9", 5, 9),
    ],
)
async def test_single_range(
    client: httpx.AsyncClient, published: str, header: str, start: int, end: int
) -> None:
    response = await client.get(f"/share/{published}", headers={"Range": header})
    assert response.status_code == 206, response.text
    assert response.content == CONTENT[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
    assert response.headers["content-length"] == str(end + 1 - start)
    assert response.headers["etag"] == f'"{SHA1}"'


async def test_head_with_a_range(client: httpx.AsyncClient, published: str) -> None:
    response = await client.head(f"/share/{published}", headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.content == b""
    assert response.headers["content-range"] == f"bytes 100-199/{SIZE}"
    assert response.headers["content-length"] == "100"


async def test_resume_from_a_partial_download(client: httpx.AsyncClient, published: str) -> None:
    """What `curl -C -` does: ask for the rest after the bytes it has."""
    have = CONTENT[:700_000]
    rest = await client.get(f"/share/{published}", headers={"Range": f"bytes={len(have)}-"})
    assert rest.status_code == 206
    assert have + rest.content == CONTENT


async def test_several_ranges(client: httpx.AsyncClient, published: str) -> None:
    response = await client.get(f"/share/{published}", headers={"Range": "bytes=0-9,100-109"})
    assert response.status_code == 206
    assert response.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert CONTENT[0:10] in response.content
    assert CONTENT[100:110] in response.content
    assert f"bytes 0-9/{SIZE}".encode() in response.content
    assert f"bytes 100-109/{SIZE}".encode() in response.content


async def test_unsatisfiable_parts_of_a_range_are_left_out(
    client: httpx.AsyncClient, published: str
) -> None:
    header = f"bytes=0-9,{SIZE + 100}-"
    response = await client.get(f"/share/{published}", headers={"Range": header})
    assert response.status_code == 206, response.text
    assert response.content == CONTENT[:10]
    assert response.headers["content-range"] == f"bytes 0-9/{SIZE}"


@pytest.mark.parametrize(
    "header",
    [f"bytes={SIZE}-", f"bytes={SIZE + 1}-{SIZE + 9}", "bytes=-0", "bytes=" + "9" * 19 + "-"],
)
async def test_unsatisfiable_range_is_416(
    client: httpx.AsyncClient, published: str, header: str
) -> None:
    response = await client.get(f"/share/{published}", headers={"Range": header})
    assert_error(response, 416, "range_not_satisfiable", str(SIZE))
    assert response.headers["content-range"] == f"bytes */{SIZE}"


@pytest.mark.parametrize(
    "header",
    [
        "items=0-9",
        "bytes=20-10",
        "bytes=abc",
        "bytes=",
        "0-9",
        "bytes=0-9,x-y",
        "bytes=-",
        "bytes=" + "9" * 5000 + "-",
    ],
)
async def test_range_that_cannot_be_parsed_is_ignored(
    client: httpx.AsyncClient, published: str, header: str
) -> None:
    response = await client.get(f"/share/{published}", headers={"Range": header})
    assert response.status_code == 200, response.text
    assert response.content == CONTENT
    assert "content-range" not in response.headers


async def test_if_range(client: httpx.AsyncClient, published: str) -> None:
    current = await client.get(
        f"/share/{published}", headers={"Range": "bytes=0-9", "If-Range": f'"{SHA1}"'}
    )
    assert current.status_code == 206
    assert current.content == CONTENT[:10]
    for stale in ('"0000000000000000000000000000000000000000"', f'W/"{SHA1}"'):
        response = await client.get(
            f"/share/{published}", headers={"Range": "bytes=0-9", "If-Range": stale}
        )
        assert response.status_code == 200
        assert response.content == CONTENT
    modified = current.headers["last-modified"]
    by_date = await client.get(
        f"/share/{published}", headers={"Range": "bytes=0-9", "If-Range": modified}
    )
    assert by_date.status_code == 206
    assert by_date.content == CONTENT[:10]
    changed = await client.get(
        f"/share/{published}",
        headers={"Range": f"bytes={SIZE + 5}-", "If-Range": '"an old version"'},
    )
    assert changed.status_code == 200
    assert changed.content == CONTENT


@pytest.mark.parametrize(
    "header", [f'"{SHA1}"', f'"other", "{SHA1}"', f'W/"{SHA1}"', "*", f'"x",W/"{SHA1}"']
)
async def test_if_none_match_answers_304(
    client: httpx.AsyncClient, published: str, header: str
) -> None:
    for method in ("GET", "HEAD"):
        response = await client.request(
            method, f"/share/{published}", headers={"If-None-Match": header}
        )
        assert response.status_code == 304, (method, header)
        assert response.content == b""
        assert response.headers["etag"] == f'"{SHA1}"'


@pytest.mark.parametrize("header", ['"other"', SHA1, f'"{SHA1[:-1]}"'])
async def test_if_none_match_with_another_tag_downloads(
    client: httpx.AsyncClient, published: str, header: str
) -> None:
    response = await client.get(f"/share/{published}", headers={"If-None-Match": header})
    assert response.status_code == 200
    assert response.content == CONTENT


async def test_unknown_file_is_404(client: httpx.AsyncClient, published: str) -> None:
    response = await client.get("/share/Other.pkg")
    assert_error(response, 404, "not_found", "Other.pkg")
    head = await client.head("/share/Other.pkg")
    assert head.status_code == 404
    assert head.content == b""
    assert_error(await client.get("/share/nomad.pkg"), 404, "not_found")
    assert published == "NoMAD.pkg"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/share/%2E%2E", 400),
        ("/share/.hidden", 400),
        ("/share/a%00b.pkg", 400),
        ("/share/a%1Bb.pkg", 400),
        ("/share/a%5Cb.pkg", 400),
        ("/share/NoMAD..pkg", 400),
        ("/share/" + "x" * 300, 400),
        ("/share/a%2Fb.pkg", 404),
        ("/share/..%2FNoMAD.pkg", 404),
        ("/share/", 404),
    ],
)
async def test_bad_filename_is_refused(
    client: httpx.AsyncClient, published: str, path: str, status: int
) -> None:
    response = await client.get(path)
    assert_error(response, status, "invalid_input" if status == 400 else "not_found")
    assert published.encode() not in response.content


@pytest.mark.parametrize("status", ["Publishing", "Failed", "Downloading"])
async def test_package_that_is_not_public_is_not_served(
    client: httpx.AsyncClient, settings: Settings, published: str, status: str
) -> None:
    await set_status(settings, published, status)
    assert (settings.share_dir / published).is_file()
    assert_error(await client.get(f"/share/{published}"), 404, "not_found", published)
    assert (await client.head(f"/share/{published}")).status_code == 404


async def test_file_without_a_row_is_not_served(
    client: httpx.AsyncClient, settings: Settings, published: str
) -> None:
    (settings.share_dir / "Stray.pkg").write_bytes(b"not a package")
    assert_error(await client.get("/share/Stray.pkg"), 404, "not_found")
    assert (await client.get(f"/share/{published}")).status_code == 200


async def test_row_whose_file_is_gone_is_404(
    client: httpx.AsyncClient, settings: Settings, published: str
) -> None:
    (settings.share_dir / published).unlink()
    assert_error(await client.get(f"/share/{published}"), 404, "not_found")


async def test_deleted_package_is_not_served(
    admin_client: httpx.AsyncClient, published: str
) -> None:
    assert (await admin_client.delete(f"/api/admin/packages/{published}")).status_code == 204
    assert_error(await admin_client.get(f"/share/{published}"), 404, "not_found")


class TestShareRequiresLogin:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"share_requires_login": True})

    async def test_download_needs_a_token(
        self, admin_client: httpx.AsyncClient, app: FastAPI, published: str
    ) -> None:
        async with anonymous(app) as nobody:
            response = await nobody.get(f"/share/{published}")
            assert_error(response, 401, "unauthorized", "ODS_SHARE_REQUIRES_LOGIN")
            assert response.headers["www-authenticate"] == "Bearer"
            assert (await nobody.head(f"/share/{published}")).status_code == 401
            nobody.headers["Authorization"] = "Bearer not-a-token"
            assert_error(await nobody.get(f"/share/{published}"), 401, "unauthorized")
            assert_error(await nobody.get("/share/Unknown.pkg"), 401, "unauthorized")

        response = await admin_client.get(f"/share/{published}")
        assert response.status_code == 200
        assert response.content == CONTENT
        ranged = await admin_client.get(f"/share/{published}", headers={"Range": "bytes=-5"})
        assert ranged.status_code == 206
        assert ranged.content == CONTENT[-5:]

    async def test_an_api_token_works_too(
        self, admin_client: httpx.AsyncClient, app: FastAPI, published: str
    ) -> None:
        created = await admin_client.post("/api/admin/tokens", json={"name": "Jamf"})
        assert created.status_code == 201, created.text
        async with anonymous(app) as jamf:
            jamf.headers["Authorization"] = f"Bearer {created.json()['token']}"
            response = await jamf.get(f"/share/{published}")
        assert response.status_code == 200
        assert response.content == CONTENT

    async def test_an_account_that_must_change_its_password_cannot_download(
        self, admin_client: httpx.AsyncClient, app: FastAPI, published: str
    ) -> None:
        created = await admin_client.post(
            "/api/admin/users",
            json={"username": "newcomer", "password": "newcomer passphrase", "role": "read_only"},
        )
        assert created.status_code == 201, created.text
        async with anonymous(app) as newcomer:
            login = await newcomer.post(
                "/api/auth/login",
                json={"username": "newcomer", "password": "newcomer passphrase"},
            )
            assert login.json()["must_change_password"] is True
            newcomer.headers["Authorization"] = f"Bearer {login.json()['token']}"
            refused = await newcomer.get(f"/share/{published}")
            assert_error(refused, 403, "password_change_required")
            assert (await newcomer.head(f"/share/{published}")).status_code == 403


class TestAccelRedirect:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"accel_redirect": "/_ods_share/"})

    async def test_nginx_is_told_to_send_the_file(
        self, client: httpx.AsyncClient, admin_client: httpx.AsyncClient, published: str
    ) -> None:
        for method in ("GET", "HEAD"):
            response = await client.request(method, f"/share/{published}")
            assert response.status_code == 200
            assert response.headers["x-accel-redirect"] == "/_ods_share/NoMAD.pkg"
            assert response.content == b""
            assert response.headers["etag"] == f'"{SHA1}"'
            assert response.headers["content-type"] == "application/octet-stream"
            assert response.headers["content-disposition"].startswith("attachment")

        ranged = await client.get(f"/share/{published}", headers={"Range": "bytes=0-9"})
        assert ranged.headers["x-accel-redirect"] == "/_ods_share/NoMAD.pkg"
        assert ranged.content == b""

        cached = await client.get(f"/share/{published}", headers={"If-None-Match": f'"{SHA1}"'})
        assert cached.status_code == 304
        assert "x-accel-redirect" not in cached.headers

    async def test_names_are_quoted_in_the_redirect(self, admin_client: httpx.AsyncClient) -> None:
        await uploaded(admin_client, "Tool 1.0 #2.pkg", b"tool")
        await uploaded(admin_client, "Résumé.pkg", b"resume")
        response = await admin_client.get("/share/Tool%201.0%20%232.pkg")
        assert response.headers["x-accel-redirect"] == "/_ods_share/Tool%201.0%20%232.pkg"
        response = await admin_client.get("/share/Résumé.pkg")
        assert response.headers["x-accel-redirect"] == "/_ods_share/R%C3%A9sum%C3%A9.pkg"

    async def test_unknown_or_unpublished_files_get_no_redirect(
        self, client: httpx.AsyncClient, settings: Settings, published: str
    ) -> None:
        response = await client.get("/share/Other.pkg")
        assert_error(response, 404, "not_found")
        assert "x-accel-redirect" not in response.headers
        await set_status(settings, published, "Publishing")
        response = await client.get(f"/share/{published}")
        assert_error(response, 404, "not_found")
        assert "x-accel-redirect" not in response.headers
