"""Engine and sessions; SQLite in WAL mode with one writer at a time.

Reads use `db.session()`. Anything that writes uses `db.transaction()`, which
commits on success and rolls back on error. On SQLite a write transaction
starts with `BEGIN IMMEDIATE` and writers in this process queue on an asyncio
lock, so a write never fails with "database is locked"; the busy timeout
covers other processes (the CLI, a worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from ods.core import platform

SQLITE_BUSY_TIMEOUT_MS = 30_000
# The largest id a row can have on every backend (a signed 64-bit integer); a
# larger number names no row, and drivers fail on it rather than find nothing.
MAX_ROW_ID = 2**63 - 1

M = TypeVar("M")


async def get_row(session: AsyncSession, model: type[M], row_id: int) -> M | None:
    """The row of `model` with this id, or None, also for ids no backend can store."""
    if not 1 <= row_id <= MAX_ROW_ID:
        return None
    return await session.get(model, row_id)


def protect_sqlite_files(database: str) -> None:
    """The database holds password hashes and encrypted secrets: owner only.

    SQLite gives its -wal and -shm files the mode of the database file, so a
    new database is created private first; files left by an earlier version
    are made private too.
    """
    if database in ("", ":memory:"):
        return
    path = Path(database)
    if not path.exists() and path.parent.is_dir():
        with contextlib.suppress(FileExistsError):
            os.close(platform.create_private_file(path))
    for suffix in ("", "-wal", "-shm", "-journal"):
        platform.keep_private(path.with_name(path.name + suffix))


# SQLite's page cache per connection (its default is 2,000 KiB): the packages table
# of 10,000 packages (~4 MB) stays in it between listings instead of being read
# from the OS again each time.
SQLITE_CACHE_KIB = 8 * 1024


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        protect_sqlite_files(parsed.database or "")
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    options: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_recycle": 1800,
        "pool_size": 10,
        "max_overflow": 40,
        "pool_timeout": 60,
    }
    return create_async_engine(url, **options)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("ods_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """Owns the engine; hands out read sessions and write transactions."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer = async_sessionmaker(
            self.engine.execution_options(ods_write=True), expire_on_commit=False
        )
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        # Counts the write transactions this process committed: what it remembers of
        # the database (`packages.fast_downloads`) holds only until the next one.
        self.write_generation = 0

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; never commit through it."""
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one write transaction, committed when the block ends."""
        try:
            if self._write_lock is None:
                async with self._writer() as session, session.begin():
                    yield session
                return
            async with self._write_lock, self._writer() as session, session.begin():
                yield session
        finally:
            self.write_generation += 1

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database's file, or None on another backend (or in memory)."""
        name = self.engine.url.database if self.is_sqlite else None
        return Path(name) if name and name != ":memory:" else None

    async def probe_write(self) -> None:
        """Commit a write that changes nothing: fails when the database refuses writes
        (its disk is full, it is read-only)."""
        async with self.transaction() as session:
            await session.execute(text("UPDATE server SET name = name WHERE id = 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
