"""Fifty API clients at once, on every backend: no lock errors, no 500s.

Every client logs in, uploads, lists, reads, changes settings and deletes at
the same time as the others; some of them fight over one shared filename. Each
answer must be one the API documents for that race, and the server log must
not show "database is locked", a driver InternalError or InterfaceError, a
pool timeout, or any other unexpected error.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI

from tests.helpers.api import NEW_PASSWORD
from tests.helpers.packages import upload

CLIENTS = 50
SHARED = "Shared.pkg"
SHARED_CONTENT = b"the same bytes for every client\n" * 64
FORBIDDEN_IN_LOG = (
    "database is locked",
    "InternalError",
    "InterfaceError",
    "QueuePool limit",
    "Deadlock",
    "deadlock",
    "Traceback",
)


@dataclass
class Outcome:
    """Every (request, status) pair that was answered, and any that was not."""

    answered: list[tuple[str, int, str]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def check(self, what: str, response: httpx.Response, expected: set[int]) -> None:
        self.answered.append((what, response.status_code, response.text[:200]))
        if response.status_code not in expected:
            self.unexpected.append(
                f"{what}: {response.status_code} not in {sorted(expected)}: {response.text[:300]}"
            )


def content_for(number: int, copy: int) -> bytes:
    return hashlib.sha256(f"{number}/{copy}".encode()).digest() * (64 + number)


async def one_client(app: FastAPI, number: int, outcome: Outcome) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ods.test") as client:
        login = await client.post(
            "/api/auth/login", json={"username": "admin", "password": NEW_PASSWORD}
        )
        outcome.check("login", login, {200})
        if login.status_code != 200:
            return
        client.headers["Authorization"] = f"Bearer {login.json()['token']}"

        kept, dropped = f"Kept-{number}.pkg", f"Dropped-{number}.pkg"
        path = "/api/admin/upload" if number % 2 else "/api/admin/packages"
        first = await upload(client, kept, content_for(number, 0), stage="Test", path=path)
        outcome.check("upload", first, {201})
        second = await upload(client, dropped, content_for(number, 1), stage="Dev", path=path)
        outcome.check("upload", second, {201})
        # Identical bytes: the first upload wins, the rest see it published or in flight.
        shared = await upload(client, SHARED, SHARED_CONTENT, stage="Prod", path=path)
        outcome.check("upload shared", shared, {201, 409})

        listing = await client.get("/api/admin/packages")
        outcome.check("list", listing, {200})
        if listing.status_code == 200:
            names = {item["filename"] for item in listing.json()["items"]}
            if kept not in names:
                outcome.unexpected.append(f"list: {kept} missing after its 201")

        by_name = await client.get(f"/api/admin/packages/{kept}")
        outcome.check("get by filename", by_name, {200})
        if first.status_code == 201:
            by_id = await client.get(f"/api/admin/packages/{first.json()['id']}")
            outcome.check("get by id", by_id, {200})
            if by_id.status_code == 200 and by_id.json()["sha1"] != first.json()["sha1"]:
                outcome.unexpected.append(f"get by id: {kept} has another sha1")

        outcome.check("about", await client.get("/api/admin/about"), {200})
        update = await client.post(
            "/api/admin/about/update", json={"name": f"ODS {number}", "stage": "Prod"}
        )
        outcome.check("about/update", update, {201})

        stage = await client.patch(f"/api/admin/packages/{SHARED}", json={"stage": "Test"})
        outcome.check("change stage shared", stage, {200, 404, 409})

        outcome.check("delete", await client.delete(f"/api/admin/packages/{dropped}"), {204})
        outcome.check("get deleted", await client.get(f"/api/admin/packages/{dropped}"), {404})
        # Everyone deletes the shared package: one wins, the others find it gone or busy.
        deleted = await client.delete(f"/api/admin/packages/{SHARED}")
        outcome.check("delete shared", deleted, {204, 404, 409})


async def run_all(make: Callable[[int], Awaitable[None]]) -> list[BaseException]:
    results = await asyncio.gather(*(make(n) for n in range(CLIENTS)), return_exceptions=True)
    return [result for result in results if isinstance(result, BaseException)]


async def test_fifty_clients_at_once(
    app: FastAPI, admin_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """admin_client has changed the first-start password, so every client can log in."""
    caplog.set_level(logging.INFO)
    outcome = Outcome()

    failures = await run_all(lambda n: one_client(app, n, outcome))

    assert failures == []
    assert outcome.unexpected == []
    assert len(outcome.answered) >= CLIENTS * 12
    assert not [status for _, status, _ in outcome.answered if status >= 500]
    bad_log = [
        f"{record.levelname} {record.name}: {record.getMessage()}"
        for record in caplog.records
        if record.levelno >= logging.ERROR
        or any(word in record.getMessage() for word in FORBIDDEN_IN_LOG)
        or (record.exc_text and any(word in record.exc_text for word in FORBIDDEN_IN_LOG))
    ]
    assert bad_log == []

    # What the races left behind is consistent: every kept package, no dropped one.
    listing = await admin_client.get("/api/admin/packages")
    assert listing.status_code == 200
    names = {item["filename"] for item in listing.json()["items"]}
    assert {f"Kept-{n}.pkg" for n in range(CLIENTS)} <= names
    assert not {f"Dropped-{n}.pkg" for n in range(CLIENTS)} & names
    about = await admin_client.get("/api/admin/about")
    assert about.json()["name"] in {f"ODS {n}" for n in range(CLIENTS)}
    for item in listing.json()["items"]:
        detail = await admin_client.get(f"/api/admin/packages/{item['id']}")
        assert detail.status_code == 200
        assert detail.json()["status"] == "Public"
