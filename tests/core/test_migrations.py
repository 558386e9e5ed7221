"""The Alembic migrations build exactly the schema of ods.core.models, on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command
from ods.core import migrate
from ods.core.config import normalise_database_url
from ods.core.db import create_engine
from ods.core.models import Base


@pytest.fixture
async def engine(empty_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(normalise_database_url(empty_database_url))
    try:
        yield engine
    finally:
        await engine.dispose()


def differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": False}
    )
    return list(compare_metadata(context, Base.metadata))


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def downgrade_to_base(connection: Connection) -> None:
    command.downgrade(migrate.alembic_config(connection), "base")


async def test_upgrade_on_an_empty_database_builds_the_models(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(table_names) == set()
        assert not await migrate.is_current(engine)

    await migrate.upgrade(engine)

    async with engine.connect() as connection:
        tables = await connection.run_sync(table_names)
        assert tables == set(Base.metadata.tables) | {"alembic_version"}
        assert await connection.run_sync(differences) == []
    assert await migrate.is_current(engine)


async def test_upgrade_twice_changes_nothing(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    await migrate.upgrade(engine)
    assert await migrate.is_current(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_downgrade_to_base_removes_every_table(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    async with engine.begin() as connection:
        await connection.run_sync(downgrade_to_base)
    async with engine.connect() as connection:
        assert await connection.run_sync(table_names) <= {"alembic_version"}
    assert not await migrate.is_current(engine)

    await migrate.upgrade(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []
