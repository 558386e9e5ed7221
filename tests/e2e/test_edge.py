"""The shipped Nginx config in front of a real `ods serve`: the edge as clients meet it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.api import NEW_PASSWORD
from tests.helpers.processes.nginx import Nginx, nginx_in_front_of
from tests.helpers.processes.serve import OdsServer, serving
from tests.helpers.tls import self_signed_certificate

pytestmark = pytest.mark.e2e


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[tuple[OdsServer, Nginx]]:
    cert, key = self_signed_certificate(tmp_path)
    with (
        serving(
            tmp_path / "data", admin_password=NEW_PASSWORD, ODS_LOGIN_MAX_FAILURES="5"
        ) as server,
        nginx_in_front_of(server.port, server.data_dir, cert, key, tmp_path / "nginx") as nginx,
    ):
        yield server, nginx


async def test_a_client_cannot_pick_its_own_address_through_nginx(
    edge: tuple[OdsServer, Nginx],
) -> None:
    _, nginx = edge
    wrong = {"username": "admin", "password": "not the password"}
    async with httpx.AsyncClient(base_url=nginx.url, verify=False) as client:  # noqa: S501
        statuses = []
        for attempt in range(20):
            forged = {"X-Forwarded-For": f"198.51.100.{attempt}"}
            answer = await client.post("/api/auth/login", json=wrong, headers=forged)
            statuses.append(answer.status_code)
        right = {"username": "admin", "password": NEW_PASSWORD}
        last = await client.post(
            "/api/auth/login", json=right, headers={"X-Forwarded-For": "203.0.113.9"}
        )
        assert statuses[:5] == [401] * 5
        assert set(statuses[5:]) == {429}
        assert last.status_code == 429
    # The event log names the address Nginx saw, never the ones the client made up.
    with sqlite3.connect(edge[0].data_dir / "ods.db") as db:
        rows = db.execute("SELECT data FROM events WHERE kind = 'login.failed'").fetchall()
    assert len(rows) == 5
    assert {json.loads(data)["address"] for (data,) in rows} == {"127.0.0.1"}


async def test_only_uploads_may_send_large_bodies_through_nginx(
    edge: tuple[OdsServer, Nginx],
) -> None:
    _, nginx = edge
    big = b"x" * (2 * 1024 * 1024)
    async with httpx.AsyncClient(base_url=nginx.url, verify=False) as client:  # noqa: S501
        for path in ("/api/auth/login", "/api/ods/notify", "/api/admin/users"):
            answer = await client.post(
                path, content=big, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 413, (path, answer.text[:200])
            assert answer.json()["error"] == "payload_too_large"
        # An upload of the same size goes through Nginx to ODS (which wants a login first).
        upload = await client.post(
            "/api/admin/upload", files={"file": ("Big.pkg", big, "application/octet-stream")}
        )
        assert upload.status_code == 401
