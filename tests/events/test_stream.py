"""GET /api/admin/events/stream: the event log as server-sent events.

Streams need a real HTTP server (httpx's ASGI transport buffers whole bodies):
uvicorn serves the test's app in the test's own event loop, on every database
backend; one test stops a real `ods serve` with an open stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from ods.core.config import Settings
from ods.core.db import Database
from ods.core.models import Event
from ods.events.log import EventFollower
from tests.helpers.api import login
from tests.helpers.processes.serve import free_port, start

STREAM = "/api/admin/events/stream"


@pytest.fixture
async def live_url(app: FastAPI) -> AsyncIterator[str]:
    """The started app served over HTTP by uvicorn in this event loop."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", ws="none", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        assert time.monotonic() < deadline, "uvicorn did not start in time"
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    # A stream still running would hold the shutdown: the clients left, so must the streams.
    await asyncio.wait_for(task, 5)


@asynccontextmanager
async def opened(
    url: str, token: str, headers: dict[str, str] | None = None, query: str = ""
) -> AsyncIterator[AsyncIterator[str]]:
    """The stream's lines, after its opening `: connected` comment."""
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream(
            "GET",
            f"{url}{STREAM}{query}",
            headers={"Authorization": f"Bearer {token}", **(headers or {})},
        ) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        lines = response.aiter_lines()
        assert await anext(lines) == ": connected"
        assert await anext(lines) == ""
        yield lines


async def next_event(lines: AsyncIterator[str]) -> dict[str, str]:
    """The fields of the next event; comments (keepalives) are skipped."""
    fields: dict[str, str] = {}
    async with asyncio.timeout(10):
        async for line in lines:
            if line == "" and fields:
                return fields
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
    raise AssertionError("the stream ended")


def bearer(client: httpx.AsyncClient) -> str:
    return client.headers["Authorization"].removeprefix("Bearer ")


async def make_token(client: httpx.AsyncClient, name: str) -> None:
    response = await client.post("/api/admin/tokens", json={"name": name})
    assert response.status_code == 201, response.text


async def test_the_stream_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get(STREAM)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_the_stream_needs_the_first_start_password_changed(
    client: httpx.AsyncClient,
) -> None:
    token = await login(client, "admin", "ods1234!")
    response = await client.get(STREAM, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json()["error"] == "password_change_required"


async def test_an_event_arrives_over_the_stream_after_an_action(
    admin_client: httpx.AsyncClient, live_url: str
) -> None:
    await make_token(admin_client, "before the stream")
    async with opened(live_url, bearer(admin_client)) as lines:
        await make_token(admin_client, "AutoPkg on build-mac-01")
        event = await next_event(lines)
    logged = (await admin_client.get("/api/admin/events?limit=1")).json()["items"][0]
    assert event["id"] == str(logged["id"])
    assert event["event"] == "token.created"
    assert json.loads(event["data"]) == logged
    assert logged["message"] == "API token 'AutoPkg on build-mac-01' created"


async def rest_of(lines: AsyncIterator[str]) -> list[str]:
    """Every line until the stream ends; fails if it does not end within 10 s."""
    found = []
    async with asyncio.timeout(10):
        async for line in lines:
            found.append(line)
    return found


@pytest.mark.parametrize("how", ["logout", "revoke", "delete user", "demote"])
async def test_the_stream_ends_soon_after_its_token_stops_standing(
    admin_client: httpx.AsyncClient, live_url: str, how: str
) -> None:
    user = await admin_client.post(
        "/api/admin/users",
        json={
            "username": "watcher",
            "password": "watcher passphrase",
            "role": "admin",
            "must_change_password": False,
        },
    )
    assert user.status_code == 201, user.text
    watcher = user.json()
    login = await admin_client.post(
        "/api/auth/login", json={"username": "watcher", "password": "watcher passphrase"}
    )
    token = login.json()["token"]
    own = {"Authorization": f"Bearer {token}"}
    async with opened(live_url, token) as lines:
        if how == "logout":
            ended = await admin_client.post("/api/auth/logout", headers=own)
        elif how == "revoke":
            sessions = (await admin_client.get("/api/admin/tokens", headers=own)).json()
            ids = [item["id"] for item in sessions["items"] if item["kind"] == "session"]
            ended = await admin_client.delete(f"/api/admin/tokens/{ids[0]}", headers=own)
        elif how == "delete user":
            ended = await admin_client.delete(f"/api/admin/users/{watcher['id']}")
        else:
            ended = await admin_client.patch(
                f"/api/admin/users/{watcher['id']}", json={"role": "read_only"}
            )
        assert ended.status_code in (200, 204), ended.text
        started = time.monotonic()
        # Events of the change itself may still arrive; then the stream says why and ends.
        rest = await rest_of(lines)
        assert time.monotonic() - started < 6
    assert "event: ods.unauthorized" in rest


async def test_last_event_id_resumes_after_the_last_event_seen(
    admin_client: httpx.AsyncClient, live_url: str
) -> None:
    for name in ("first", "second", "third"):
        await make_token(admin_client, name)
    items = (await admin_client.get("/api/admin/events?kind=token.created")).json()["items"]
    first, second, third = sorted(item["id"] for item in items)
    token = bearer(admin_client)

    async with opened(live_url, token, headers={"Last-Event-ID": str(first)}) as lines:
        assert [(await next_event(lines))["id"] for _ in range(2)] == [str(second), str(third)]
    async with opened(live_url, token, query=f"?after={second}") as lines:
        assert (await next_event(lines))["id"] == str(third)
    # A reconnecting client's Last-Event-ID wins over the `after` it first connected with.
    async with opened(
        live_url, token, headers={"Last-Event-ID": str(second)}, query=f"?after={first}"
    ) as lines:
        assert (await next_event(lines))["id"] == str(third)


async def test_without_an_id_only_new_events_are_sent(
    admin_client: httpx.AsyncClient, live_url: str
) -> None:
    await make_token(admin_client, "old news")
    async with opened(live_url, bearer(admin_client)) as lines:
        await make_token(admin_client, "fresh")
        event = await next_event(lines)
    assert json.loads(event["data"])["message"] == "API token 'fresh' created"


async def test_a_malformed_last_event_id_is_refused(
    admin_client: httpx.AsyncClient,
) -> None:
    response = await admin_client.get(STREAM, headers={"Last-Event-ID": "yesterday"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_input"


async def test_an_event_that_commits_late_is_not_lost(settings: Settings) -> None:
    """Ids are taken at insert, so id 2 may become visible after id 3 (MariaDB, PostgreSQL)."""
    assert settings.database_url is not None
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            session.add_all(
                [Event(id=1, kind="a", message="one"), Event(id=3, kind="c", message="3")]
            )
        follower = EventFollower(db, 0, gap_wait=60)
        assert [event.id for event in await follower.poll()] == [1, 3]
        async with db.transaction() as session:
            session.add_all(
                [Event(id=2, kind="b", message="2"), Event(id=4, kind="d", message="4")]
            )
        assert [event.id for event in await follower.poll()] == [2, 4]
        assert await follower.poll() == []
        assert follower.after == 4
    finally:
        await db.engine.dispose()


async def test_a_gap_that_never_fills_is_passed_after_a_while(settings: Settings) -> None:
    assert settings.database_url is not None
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            session.add_all(
                [Event(id=1, kind="a", message="1"), Event(id=3, kind="c", message="3")]
            )
        follower = EventFollower(db, 0, gap_wait=0)
        assert [event.id for event in await follower.poll()] == [1, 3]
        assert await follower.poll() == []
        assert follower.after == 3
    finally:
        await db.engine.dispose()


@pytest.mark.e2e
def test_the_stream_ends_when_the_server_stops(tmp_path: Path) -> None:
    """SIGTERM ends open streams at once instead of holding the graceful shutdown."""
    password = "a stream test passphrase"
    server = start(tmp_path / "data", admin_password=password)
    try:
        answer = httpx.post(
            f"{server.url}/api/auth/login", json={"username": "admin", "password": password}
        )
        headers = {"Authorization": f"Bearer {answer.json()['token']}"}
        with httpx.stream("GET", f"{server.url}{STREAM}", headers=headers, timeout=8) as response:
            lines = response.iter_lines()
            assert next(lines) == ": connected"
            stopped_at = time.monotonic()
            server.process.terminate()
            assert [line for line in lines if line] == []
        server.process.wait(timeout=10)
        assert time.monotonic() - stopped_at < 5
        assert "Application shutdown complete" in server.output()
        assert "graceful shutdown exceeded" not in server.output()
    finally:
        server.stop()
