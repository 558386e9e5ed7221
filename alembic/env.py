"""Alembic environment: runs on a connection handed over by ods.core.migrate,
or, for the `alembic` command in development, on the URL from ODS settings."""

import asyncio

from sqlalchemy.engine import Connection

from alembic import context
from ods.core.models import Base

target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return

    from ods.core.config import load_settings
    from ods.core.db import create_engine

    async def run() -> None:
        engine = create_engine(load_settings().database_url or "")
        async with engine.begin() as conn:
            await conn.run_sync(run_on)
        await engine.dispose()

    asyncio.run(run())


run_online()
