"""The download fast path: a repeated download asks the database nothing, and what it
remembers is never served once it no longer holds.

The answers themselves (headers, ranges, 304, 404, X-Accel-Redirect) are those of
tests/packages/test_share.py, which run through the fast path too. The fast path
keeps nothing per database backend, so these run on SQLite.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, update

from ods.core.config import Settings
from ods.core.models import Package
from ods.packages.fast_downloads import (
    ENTRY_SECONDS,
    PIECE_BYTES,
    SENDING_BYTES,
    SMALLEST_PIECE_BYTES,
    WHOLE_BYTES,
    DownloadIndex,
)
from tests.helpers.api import anonymous, assert_error
from tests.helpers.packages import MIB, content_of, set_status, uploaded

CONTENT = content_of(3 * MIB + 5, seed=7)
SHA1 = hashlib.sha1(CONTENT, usedforsecurity=False).hexdigest()
OTHER = content_of(3 * MIB + 5, seed=8)


@pytest.fixture
def database_backend() -> str:
    return "sqlite"


@pytest.fixture
async def published(admin_client: httpx.AsyncClient) -> str:
    await uploaded(admin_client, "Firefox.pkg", CONTENT)
    return "Firefox.pkg"


@contextmanager
def queries(app: FastAPI) -> Iterator[list[str]]:
    """The SQL statements the app's database runs meanwhile."""
    seen: list[str] = []
    engine = app.state.context.db.engine.sync_engine

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def quiet_download(
    app: FastAPI, client: httpx.AsyncClient, path: str, **kwargs: Any
) -> httpx.Response:
    """A download that asked the database nothing, once the upload's jobs are done.

    The server's own background writes (its lease, its rounds) empty the index
    whenever they commit, so a few tries are allowed for one with none meanwhile."""
    queue = app.state.context.queue
    for _ in range(100):
        if queue.depth == 0:
            break
        await asyncio.sleep(0.05)
    for _ in range(5):
        await client.get(path)
        with queries(app) as seen:
            response = await client.get(path, **kwargs)
        if not [statement for statement in seen if "packages" in statement]:
            return response
    raise AssertionError(f"every download of {path} asked the database: {seen}")


async def test_a_repeated_download_asks_the_database_nothing(
    app: FastAPI, client: httpx.AsyncClient, published: str
) -> None:
    again = await quiet_download(app, client, f"/share/{published}")
    assert again.status_code == 200
    assert again.content == CONTENT
    assert again.headers["etag"] == f'"{SHA1}"'
    head = await client.head(f"/share/{published}")
    assert head.headers["content-length"] == str(len(CONTENT))


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        (f"bytes={PIECE_BYTES - 3}-{PIECE_BYTES + 2}", PIECE_BYTES - 3, PIECE_BYTES + 2),
        (f"bytes={WHOLE_BYTES}-", WHOLE_BYTES, len(CONTENT) - 1),
        ("bytes=-7", len(CONTENT) - 7, len(CONTENT) - 1),
        (f"bytes=5-{10 * MIB}", 5, len(CONTENT) - 1),
    ],
)
async def test_ranges_from_the_fast_path_are_the_files_bytes(
    app: FastAPI, client: httpx.AsyncClient, published: str, header: str, first: int, last: int
) -> None:
    response = await quiet_download(app, client, f"/share/{published}", headers={"Range": header})
    assert response.status_code == 206
    assert response.content == CONTENT[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(CONTENT)}"
    assert response.headers["content-length"] == str(last - first + 1)


async def test_a_file_swapped_under_the_index_is_looked_up_again(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, published: str
) -> None:
    """The identity of the file is checked at every download: bytes that are not the
    ones looked up are never sent under the ETag remembered for them."""
    await client.get(f"/share/{published}")
    swapped = settings.share_dir / "swapped.tmp"
    swapped.write_bytes(OTHER)
    os.replace(swapped, settings.share_dir / published)
    with queries(app) as seen:
        response = await client.get(f"/share/{published}")
    assert any("FROM packages" in statement for statement in seen)
    assert response.status_code == 200


async def test_downloads_that_come_at_once_share_one_lookup(
    app: FastAPI, client: httpx.AsyncClient, published: str
) -> None:
    """When an entry goes (after a write, or its time), hundreds of clients may ask for
    the same file at once: the database is asked once for all of them."""
    app.state.context.part(DownloadIndex).forget(published)
    with queries(app) as seen:
        answers = await asyncio.gather(*(client.get(f"/share/{published}") for _ in range(40)))
    assert [answer.status_code for answer in answers] == [200] * 40
    assert all(answer.content == CONTENT for answer in answers)
    lookups = [s for s in seen if "FROM packages" in s and "packages.filename" in s]
    # One, or a few when the server's own background writes ended an entry meanwhile.
    assert 1 <= len(lookups) <= 3, lookups


async def test_a_removed_file_is_not_found(
    client: httpx.AsyncClient, settings: Settings, published: str
) -> None:
    await client.get(f"/share/{published}")
    (settings.share_dir / published).unlink()
    assert_error(await client.get(f"/share/{published}"), 404, "not_found", published)


async def test_a_change_made_here_is_seen_at_once(
    app: FastAPI, client: httpx.AsyncClient, published: str
) -> None:
    """Any write this process commits empties what the fast path remembers, also one
    that leaves the file in place (a withdrawal by stage)."""
    assert (await client.get(f"/share/{published}")).status_code == 200
    async with app.state.context.db.transaction() as session:
        await session.execute(
            update(Package).where(Package.filename == published).values(status="Withdrawn")
        )
    assert_error(await client.get(f"/share/{published}"), 404, "not_found", published)


async def test_a_change_by_another_process_is_seen_within_the_entry_time(
    client: httpx.AsyncClient, settings: Settings, published: str
) -> None:
    """A withdrawal by stage leaves the file in place; another process of the site
    making it reaches this one once the entry runs out."""
    assert (await client.get(f"/share/{published}")).status_code == 200
    await set_status(settings, published, "Withdrawn")
    await asyncio.sleep(ENTRY_SECONDS + 0.1)
    assert_error(await client.get(f"/share/{published}"), 404, "not_found", published)
    assert (await client.head(f"/share/{published}")).status_code == 404


@pytest.mark.parametrize(
    ("sending", "piece"),
    [(0, PIECE_BYTES), (16, PIECE_BYTES), (64, 256 * 1024), (10_000, SMALLEST_PIECE_BYTES)],
)
def test_many_downloads_at_once_send_smaller_pieces(sending: int, piece: int) -> None:
    """The pieces of all downloads under way stay within SENDING_BYTES (a 1 GiB file
    to 256 clients at once held 684 MiB before), down to a floor that keeps them moving."""
    index = DownloadIndex()
    index.sending = sending
    assert index.piece_bytes() == piece
    assert piece * sending <= SENDING_BYTES or piece == SMALLEST_PIECE_BYTES


class TestNginxChecks:
    """What Nginx's check of a download (`X-ODS-Check`, deploy/nginx/ods.conf) gets: the
    X-Accel-Redirect answer naming the version, reusable only when no decision was
    needed; an empty 403 for anything else, so that Nginx asks again in full."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"accel_redirect": "/_ods_share/"})

    CHECK = {"X-ODS-Check": "1"}

    async def test_a_public_download_is_named_and_may_be_reused(
        self, client: httpx.AsyncClient, published: str
    ) -> None:
        for method in ("GET", "HEAD"):
            for extra in ({}, {"Range": "bytes=0-9"}, {"Range": "bytes=0-1,5-6"}):
                answer = await client.request(
                    method, f"/share/{published}", headers={**self.CHECK, **extra}
                )
                assert answer.status_code == 200, (method, extra)
                assert answer.content == b""
                assert answer.headers["x-ods-version"] == SHA1
                assert answer.headers["etag"] == f'"{SHA1}"'
                assert answer.headers["x-accel-redirect"] == "/_ods_share/Firefox.pkg"
                assert answer.headers["x-accel-expires"] == "1"
        jamf = await client.get(f"/CasperShare/Packages/{published}", headers=self.CHECK)
        assert jamf.headers["x-ods-version"] == SHA1

    async def test_anything_else_is_an_empty_403(
        self, client: httpx.AsyncClient, settings: Settings, published: str
    ) -> None:
        asks = [
            ("/share/Other.pkg", {}),  # not found
            ("/share/..%2Fods.db", {}),  # not a safe name
            (f"/share/{published}", {"If-None-Match": f'"{SHA1}"'}),  # 304
        ]
        for path, extra in asks:
            answer = await client.get(path, headers={**self.CHECK, **extra})
            assert answer.status_code == 403, path
            assert answer.content == b""
            assert "x-ods-version" not in answer.headers
        await set_status(settings, published, "Publishing")
        answer = await client.get(f"/share/{published}", headers=self.CHECK)
        assert (answer.status_code, answer.content) == (403, b"")

    async def test_a_decision_is_never_reused(
        self, app: FastAPI, admin_client: httpx.AsyncClient
    ) -> None:
        await uploaded(admin_client, "Firefox.pkg", CONTENT)
        app.state.context.settings = app.state.context.settings.model_copy(
            update={"share_requires_login": True}
        )
        async with anonymous(app) as stranger:
            refused = await stranger.get("/share/Firefox.pkg", headers=self.CHECK)
        assert (refused.status_code, refused.content) == (403, b"")
        allowed = await admin_client.get("/share/Firefox.pkg", headers=self.CHECK)
        assert allowed.status_code == 200
        assert allowed.headers["x-ods-version"] == SHA1
        assert "x-accel-expires" not in allowed.headers

    async def test_without_x_accel_redirect_there_is_nothing_to_check(
        self, app: FastAPI, client: httpx.AsyncClient, published: str
    ) -> None:
        app.state.context.settings = app.state.context.settings.model_copy(
            update={"accel_redirect": None}
        )
        answer = await client.get(f"/share/{published}", headers=self.CHECK)
        assert (answer.status_code, answer.content) == (403, b"")
        plain = await client.get(f"/share/{published}")
        assert plain.content == CONTENT
