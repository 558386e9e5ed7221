"""A bounded load run: 200 clients at once on one real `ods serve`, listing, reading
details, downloading and uploading, on SQLite and on MariaDB. Every answer is the
documented one: no 5xx, no dropped connection. The longer run is `bench/load.py`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.load import OPERATIONS, run_load
from tests.helpers.services import DatabaseServer, selected_backends

pytestmark = pytest.mark.e2e

BACKENDS = [backend for backend in ("sqlite", "mariadb") if backend in selected_backends()]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_hundred_clients_get_only_documented_answers(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        report = await run_load(tmp_path, clients=200, seconds=10, packages=10)
    else:
        server: DatabaseServer = request.getfixturevalue(f"{backend}_server")
        async with server.fresh_database() as url:
            report = await run_load(
                tmp_path, backend=backend, database_url=url, clients=200, seconds=10, packages=10
            )

    assert report.server_errors == 0
    assert report.unexpected == []
    assert dict(report.transport_errors) == {}
    for operation in OPERATIONS:
        assert report.latencies[operation], f"no {operation} was answered"
