"""What every SQLite connection of ODS is set to."""

from __future__ import annotations

from pathlib import Path

from ods.core.db import SQLITE_CACHE_KIB, Database


async def test_each_connection_uses_wal_foreign_keys_and_a_larger_page_cache(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'ods.db'}")
    try:
        # Two connections at once: the settings come with each, not once per database.
        async with database.engine.connect() as first, database.engine.connect() as second:
            for connection in (first, second):
                pragma = connection.exec_driver_sql
                assert (await pragma("PRAGMA journal_mode")).scalar() == "wal"
                assert (await pragma("PRAGMA foreign_keys")).scalar() == 1
                assert (await pragma("PRAGMA synchronous")).scalar() == 1  # NORMAL
                assert (await pragma("PRAGMA cache_size")).scalar() == -SQLITE_CACHE_KIB
    finally:
        await database.engine.dispose()
