"""An unexpected error answers with the one error shape and keeps the connection usable.

The 500 is a real one: the database under a running `ods serve` is edited by
hand (as an operator with sqlite3 might) so that a package row holds a stage
no version of ODS ever wrote; reading that package then fails in the server.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.api import NEW_PASSWORD, assert_error
from tests.helpers.processes.serve import OdsServer, serving


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OdsServer]:
    with serving(tmp_path / "data", admin_password=NEW_PASSWORD) as process:
        yield process


def break_package_row(server: OdsServer, package_id: int) -> None:
    with sqlite3.connect(server.data_dir / "ods.db") as db:
        db.execute("UPDATE packages SET stage = 'Nowhere' WHERE id = ?", (package_id,))


@pytest.mark.e2e
def test_a_500_is_the_error_shape_and_the_connection_stays_open(server: OdsServer) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=server.url, limits=limits, timeout=30) as client:
        login = client.post("/api/auth/login", json={"username": "admin", "password": NEW_PASSWORD})
        assert login.status_code == 200, login.text
        client.headers["Authorization"] = f"Bearer {login.json()['token']}"
        files = {"file": ("Broken.pkg", b"not really a package", "application/octet-stream")}
        upload = client.post("/api/admin/upload", files=files)
        assert upload.status_code == 201, upload.text
        package_id = upload.json()["id"]
        break_package_row(server, package_id)

        failed = client.get(f"/api/admin/packages/{package_id}")
        assert_error(failed, 500, "internal_error", "server log")
        assert failed.headers.get("connection", "").lower() != "close"
        stream = failed.extensions["network_stream"]

        after = client.get("/api/admin/about")
        assert after.status_code == 200, after.text
        assert after.extensions["network_stream"] is stream, "the 500 closed the connection"
    assert server.output().count("unexpected error on GET /api/admin/packages/") == 1
