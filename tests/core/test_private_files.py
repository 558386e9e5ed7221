"""The SQLite database holds password hashes and encrypted secrets: its files are owner-only."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx

from ods.core.config import load_settings
from tests.helpers.api import client_for, started


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_database_and_its_wal_files_are_owner_only(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    async with started(settings) as application, client_for(application) as client:
        response: httpx.Response = await client.get("/readyz")
        assert response.status_code == 200
        files = {path.name: mode(path) for path in (tmp_path / "data").glob("ods.db*")}
        assert {"ods.db", "ods.db-wal", "ods.db-shm"} <= set(files)
        assert set(files.values()) == {0o600}


async def test_database_files_left_readable_by_an_earlier_version_are_made_private(
    tmp_path: Path,
) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    async with started(settings):
        pass
    database = tmp_path / "data" / "ods.db"
    database.chmod(0o644)
    async with started(settings):
        assert mode(database) == 0o600
