"""Uploads that must be refused, or that break off, and leave nothing behind.

Every test here checks the error shape and that no package row, no file in the
share dir and no staged file remain.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message

from ods.core.config import Settings
from ods.packages.digest import DigestingWriter
from tests.helpers.api import anonymous, assert_error, login
from tests.helpers.packages import (
    BOUNDARY,
    CONTENT_TYPE,
    MIB,
    assert_nothing_written,
    content_of,
    field_part,
    file_part,
    multipart,
    post_form,
    staged_files,
    upload,
    uploaded,
)


async def test_upload_without_a_token_is_401(
    admin_client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    async with anonymous(app) as nobody:
        response = await upload(nobody, "NoAuth.pkg", b"no auth")
        assert_error(response, 401, "unauthorized", "Authorization: Bearer")
        assert response.headers["www-authenticate"] == "Bearer"
        assert_error(await nobody.get("/api/admin/packages"), 401, "unauthorized")
        nobody.headers["Authorization"] = "Bearer not-a-token"
        response = await upload(nobody, "BadAuth.pkg", b"bad auth")
        assert_error(response, 401, "unauthorized", "not valid")
        nobody.headers["Authorization"] = "Basic YWRtaW46b2RzMTIzNCE="
        response = await upload(nobody, "Basic.pkg", b"basic auth")
        assert_error(response, 401, "unauthorized")
    await assert_nothing_written(admin_client, settings)


async def test_upload_before_the_first_password_change_is_403(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    token = await login(client, "admin", "ods1234!")
    client.headers["Authorization"] = f"Bearer {token}"
    response = await upload(client, "Early.pkg", b"too early")
    assert_error(response, 403, "password_change_required", "/api/auth/password")
    assert_error(await client.get("/api/admin/packages"), 403, "password_change_required")
    assert_error(
        await client.delete("/api/admin/packages/Early.pkg"), 403, "password_change_required"
    )
    assert list(settings.share_dir.iterdir()) == []
    assert staged_files(settings) == []


@pytest.mark.parametrize(
    ("content_type", "words"),
    [
        (None, ["multipart/form-data"]),
        ("application/json", ["multipart/form-data", "file"]),
        ("application/octet-stream", ["multipart/form-data"]),
        ("multipart/form-data", ["boundary"]),
        ("multipart/form-data; boundary=", ["boundary"]),
        ("multipart/mixed; boundary=" + BOUNDARY, ["multipart/form-data"]),
    ],
)
async def test_body_that_is_not_a_multipart_form_is_400(
    admin_client: httpx.AsyncClient,
    settings: Settings,
    content_type: str | None,
    words: list[str],
) -> None:
    body = multipart([field_part("stage", "Prod"), file_part("Form.pkg", b"form")])
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await admin_client.post("/api/admin/upload", content=body, headers=headers)
    assert_error(response, 400, "invalid_input", *words)
    await assert_nothing_written(admin_client, settings)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"this is not multipart at all", id="garbage"),
        pytest.param(
            f"--{BOUNDARY}\r\nContent-Disposition form-data\r\n\r\n"
            f"x\r\n--{BOUNDARY}--\r\n".encode(),
            id="header-without-colon",
        ),
        pytest.param(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="Bad.pkg"\r\n\r\npayload\r\n--{BOUNDARY}XX'.encode(),
            id="bad-closing-boundary",
        ),
        pytest.param(
            f"--{BOUNDARY}\r\nX-Other: 1\r\n\r\nvalue\r\n--{BOUNDARY}--\r\n".encode(),
            id="no-content-disposition",
        ),
    ],
)
async def test_malformed_multipart_is_400(
    admin_client: httpx.AsyncClient, settings: Settings, body: bytes
) -> None:
    response = await admin_client.post(
        "/api/admin/upload", content=body, headers={"Content-Type": CONTENT_TYPE}
    )
    message = assert_error(response, 400, "invalid_input")["message"]
    explained = ("malformed", "ended early", "Content-Disposition")
    assert any(word in message for word in explained), message
    await assert_nothing_written(admin_client, settings)


@pytest.mark.parametrize("cut", [0, 1, 2])
async def test_truncated_body_is_400_and_removes_the_staged_file(
    admin_client: httpx.AsyncClient, settings: Settings, cut: int
) -> None:
    full = multipart(
        [field_part("stage", "Prod"), file_part("Cut.pkg", content_of(2 * MIB + 3, seed=11))]
    )
    cut_at = {
        0: full.index(b"\r\n--" + BOUNDARY.encode() + b"--"),
        1: len(full) - 3,
        2: len(full) // 2,
    }[cut]
    response = await admin_client.post(
        "/api/admin/upload", content=full[:cut_at], headers={"Content-Type": CONTENT_TYPE}
    )
    assert_error(response, 400, "invalid_input", "truncated", "nothing was saved")
    await assert_nothing_written(admin_client, settings)


async def test_empty_body_is_400(admin_client: httpx.AsyncClient, settings: Settings) -> None:
    response = await admin_client.post(
        "/api/admin/upload", content=b"", headers={"Content-Type": CONTENT_TYPE}
    )
    assert_error(response, 400, "invalid_input")
    await assert_nothing_written(admin_client, settings)


async def test_form_without_a_file_part_is_400(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await post_form(admin_client, [field_part("stage", "Prod")])
    assert_error(response, 400, "invalid_input", "no 'file' part")
    response = await post_form(admin_client, [field_part("file", "just text")])
    assert_error(response, 400, "invalid_input", "no 'file' part")
    await assert_nothing_written(admin_client, settings)


async def test_two_file_parts_are_400(admin_client: httpx.AsyncClient, settings: Settings) -> None:
    parts = [
        field_part("stage", "Prod"),
        file_part("One.pkg", content_of(MIB + 1, seed=12)),
        file_part("Two.pkg", content_of(100, seed=13)),
    ]
    response = await post_form(admin_client, parts)
    assert_error(response, 400, "invalid_input", "one file")
    await assert_nothing_written(admin_client, settings)


async def test_file_under_another_field_name_is_400(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await post_form(admin_client, [file_part("Pkg.pkg", b"pkg", name="package")])
    assert_error(response, 400, "invalid_input", "'package'", "'file'")
    await assert_nothing_written(admin_client, settings)


async def test_too_many_parts_or_large_fields_are_400(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    many = [field_part(f"extra{number}", "x") for number in range(20)]
    response = await post_form(admin_client, [file_part("Many.pkg", b"many"), *many])
    assert_error(response, 400, "invalid_input", "too many")
    big = field_part("notes", "n" * (65 * 1024))
    response = await post_form(admin_client, [file_part("Big.pkg", b"big"), big])
    assert_error(response, 400, "invalid_input", "too large")
    await assert_nothing_written(admin_client, settings)


BAD_FILENAMES = [
    pytest.param("dir/NoMAD.pkg", ["path separator"], id="slash"),
    pytest.param("dir\\NoMAD.pkg", ["path separator"], id="backslash"),
    pytest.param("C:\\Users\\me\\NoMAD.pkg", ["path separator"], id="windows-path"),
    pytest.param("../NoMAD.pkg", ["path separator"], id="parent-path"),
    pytest.param("..", [".."], id="dotdot"),
    pytest.param(".", ["dot"], id="dot"),
    pytest.param("NoMAD..pkg", [".."], id="inner-dotdot"),
    pytest.param("a\x00b.pkg", ["control character"], id="nul"),
    pytest.param("\x1b[31mred.pkg", ["control character"], id="escape"),
    pytest.param("tab\there.pkg", ["control character"], id="tab"),
    pytest.param("del\x7f.pkg", ["control character"], id="del"),
    pytest.param("evil\u202egkp.exe", ["control character"], id="bidi-override"),
    pytest.param("line\u2028break.pkg", ["control character"], id="line-separator"),
    pytest.param("x" * 252 + ".pkg", ["255 bytes"], id="256-bytes"),
    pytest.param("é" * 126 + ".pkg", ["255 bytes"], id="256-bytes-of-utf8"),
    pytest.param("", ["no name"], id="empty"),
    pytest.param(".hidden.pkg", ["dot"], id="leading-dot"),
    pytest.param(" NoMAD.pkg", ["spaces"], id="leading-space"),
    pytest.param("NoMAD.pkg ", ["spaces"], id="trailing-space"),
]


@pytest.mark.parametrize(("filename", "words"), BAD_FILENAMES)
async def test_bad_filename_is_400(
    admin_client: httpx.AsyncClient, settings: Settings, filename: str, words: list[str]
) -> None:
    response = await upload(admin_client, filename, content_of(MIB + 5, seed=14))
    assert_error(response, 400, "invalid_input", *words)
    await assert_nothing_written(admin_client, settings)


async def test_filename_that_is_not_utf8_is_400(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    body = (
        f"--{BOUNDARY}\r\n".encode()
        + b'Content-Disposition: form-data; name="file"; filename="R\xe9sum\xe9.pkg"\r\n\r\n'
        + b"latin-1 name\r\n"
        + f"--{BOUNDARY}--\r\n".encode()
    )
    response = await admin_client.post(
        "/api/admin/upload", content=body, headers={"Content-Type": CONTENT_TYPE}
    )
    assert_error(response, 400, "invalid_input", "UTF-8")
    await assert_nothing_written(admin_client, settings)


async def test_longest_allowed_filename_is_accepted(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    name = "x" * 251 + ".pkg"
    assert len(name.encode()) == 255
    result = await uploaded(admin_client, name, b"long name")
    assert result["filename"] == name
    assert (settings.share_dir / name).read_bytes() == b"long name"


@pytest.mark.parametrize("stage_first", [True, False])
async def test_unknown_stage_is_400(
    admin_client: httpx.AsyncClient, settings: Settings, stage_first: bool
) -> None:
    stage = field_part("stage", "Staging")
    file = file_part("Stage.pkg", content_of(2 * MIB, seed=15))
    response = await post_form(admin_client, [stage, file] if stage_first else [file, stage])
    assert_error(response, 400, "invalid_input", "'Staging'", "Dev, Test or Prod")
    await assert_nothing_written(admin_client, settings)


async def test_unknown_stage_in_query_is_422(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await post_form(
        admin_client, [file_part("Query.pkg", b"query")], params={"stage": "Staging"}
    )
    assert_error(response, 422, "invalid_input", "stage")
    assert response.json()["details"][0]["field"] == "stage"
    await assert_nothing_written(admin_client, settings)


async def test_refused_upload_leaves_an_existing_package_alone(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    original = content_of(3000, seed=16)
    first = await uploaded(admin_client, "Kept.pkg", original)
    parts = [file_part("Kept.pkg", content_of(3000, seed=17)), field_part("stage", "Nope")]
    parts.append(field_part("replace", "true"))
    assert_error(await post_form(admin_client, parts), 400, "invalid_input", "'Nope'")
    truncated = multipart(
        [field_part("replace", "true"), file_part("Kept.pkg", content_of(3000, seed=18))],
        closed=False,
    )
    response = await admin_client.post(
        "/api/admin/upload", content=truncated, headers={"Content-Type": CONTENT_TYPE}
    )
    assert_error(response, 400, "invalid_input", "truncated")
    package = (await admin_client.get("/api/admin/packages/Kept.pkg")).json()
    assert package["uuid"] == first["uuid"]
    assert (settings.share_dir / "Kept.pkg").read_bytes() == original
    await assert_nothing_written(admin_client, settings, shared=["Kept.pkg"])


LIMIT = MIB


class Counted:
    """An upload body sent in 64 KiB pieces that counts how much the server pulled."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), 64 * 1024):
            piece = self.body[start : start + 64 * 1024]
            self.sent += len(piece)
            yield piece


class TestUploadSizeLimit:
    """A server whose ODS_MAX_UPLOAD_SIZE is 1 MiB."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"max_upload_size": LIMIT})

    async def test_content_length_over_the_limit_is_refused_before_reading(
        self, admin_client: httpx.AsyncClient, settings: Settings
    ) -> None:
        body = Counted(multipart([file_part("Huge.pkg", content_of(4 * LIMIT, seed=19))]))
        response = await admin_client.post(
            "/api/admin/upload",
            content=body.__aiter__(),
            headers={"Content-Type": CONTENT_TYPE, "Content-Length": str(len(body.body))},
        )
        assert_error(response, 413, "payload_too_large", str(LIMIT), "ODS_MAX_UPLOAD_SIZE")
        assert body.sent < LIMIT
        await assert_nothing_written(admin_client, settings)

    async def test_chunked_body_over_the_limit_stops_at_the_limit(
        self, admin_client: httpx.AsyncClient, settings: Settings
    ) -> None:
        body = Counted(multipart([file_part("Huge.pkg", content_of(4 * LIMIT, seed=20))]))
        response = await admin_client.post(
            "/api/admin/upload",
            content=body.__aiter__(),
            headers={"Content-Type": CONTENT_TYPE},
        )
        assert "content-length" not in response.request.headers
        assert_error(response, 413, "payload_too_large", str(LIMIT), "ODS_MAX_UPLOAD_SIZE")
        assert body.sent < 2 * LIMIT
        await assert_nothing_written(admin_client, settings)

    async def test_file_a_little_over_the_limit_is_refused(
        self, admin_client: httpx.AsyncClient, settings: Settings
    ) -> None:
        response = await upload(admin_client, "Over.pkg", content_of(LIMIT + 1, seed=21))
        assert_error(response, 413, "payload_too_large", str(LIMIT))
        await assert_nothing_written(admin_client, settings)

    async def test_file_of_exactly_the_limit_is_accepted(
        self, admin_client: httpx.AsyncClient, settings: Settings
    ) -> None:
        content = content_of(LIMIT, seed=22)
        result = await uploaded(admin_client, "Exact.pkg", content)
        assert result["file_size"] == LIMIT
        assert (settings.share_dir / "Exact.pkg").read_bytes() == content


async def call_until_disconnect(
    app: FastAPI, token: str, body: bytes, *, piece: int = 64 * 1024
) -> list[Message]:
    """Drive the app as a server would for a client that sends `body` and then hangs up."""
    pieces = [body[start : start + piece] for start in range(0, len(body), piece)]
    events: list[Message] = [
        {"type": "http.request", "body": part, "more_body": True} for part in pieces
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        await asyncio.sleep(0)
        return events.pop(0) if events else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(upload_scope(token), receive, send)
    return sent


def upload_scope(token: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/admin/upload",
        "raw_path": b"/api/admin/upload",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"ods.test"),
            (b"content-type", CONTENT_TYPE.encode()),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("ods.test", 80),
    }


@pytest.mark.parametrize(
    "where",
    ["mid-file", "after-file-headers", "mid-stage-field", "before-closing-boundary"],
)
async def test_client_that_hangs_up_mid_upload_leaves_nothing(
    admin_client: httpx.AsyncClient,
    app: FastAPI,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    content = content_of(5 * MIB, seed=23)
    full = multipart([field_part("stage", "Prod"), file_part("Gone.pkg", content)])
    file_data = full.index(content)
    cut_at = {
        "mid-file": file_data + 2 * MIB + 100,
        "after-file-headers": file_data,
        "mid-stage-field": full.index(b"Prod") + 2,
        "before-closing-boundary": len(full) - len(BOUNDARY) - 6,
    }[where]
    token = admin_client.headers["Authorization"].removeprefix("Bearer ")
    with caplog.at_level(logging.INFO):
        sent = await call_until_disconnect(app, token, full[:cut_at])
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []
    started = [message for message in sent if message["type"] == "http.response.start"]
    assert len(started) == 1
    assert started[0]["status"] == 400
    await assert_nothing_written(admin_client, settings)
    again = await uploaded(admin_client, "Gone.pkg", content)
    assert again["file_size"] == len(content)


async def test_request_cancelled_mid_upload_leaves_nothing(
    admin_client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    """What a server shutting down does to a request in flight: cancel it."""
    content = content_of(3 * MIB, seed=24)
    body = multipart([field_part("stage", "Prod"), file_part("Cancel.pkg", content)])
    sent_all = asyncio.Event()
    events: list[Message] = [
        {"type": "http.request", "body": body[start : start + MIB], "more_body": True}
        for start in range(0, 2 * MIB, MIB)
    ]

    async def receive() -> Message:
        if events:
            return events.pop(0)
        sent_all.set()
        await asyncio.Event().wait()
        raise AssertionError("never reached")

    async def send(message: Message) -> None:
        raise AssertionError(f"nothing is sent for a cancelled request: {message}")

    token = admin_client.headers["Authorization"].removeprefix("Bearer ")
    scope = upload_scope(token)
    request = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait_for(sent_all.wait(), timeout=30)
    assert [name for name in staged_files(settings) if name.startswith("upload-")]
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await assert_nothing_written(admin_client, settings)


async def test_writer_cancelled_while_a_chunk_is_hashed_removes_its_file(tmp_path: Path) -> None:
    path = tmp_path / "upload-cancelled.part"
    writer = DigestingWriter(path)
    writer.buffer(content_of(3 * MIB, seed=25))
    drain = asyncio.create_task(writer.drain())
    # One turn of the loop: chunk 0 goes to the threads, chunk 1 waits for them.
    await asyncio.sleep(0)
    drain.cancel()
    with pytest.raises(asyncio.CancelledError):
        await drain
    await writer.abort()
    assert not path.exists()
