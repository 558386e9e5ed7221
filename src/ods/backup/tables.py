"""A logical copy of every table: written from one snapshot, loaded into a fresh database.

The same code serves SQLite, MariaDB/MySQL and PostgreSQL: no dump tool whose
version must match the server, and a backup restores into any of them. The
export reads all tables in one transaction that sees one snapshot (SQLite's WAL
read transaction, REPEATABLE READ elsewhere), so rows that refer to each other
are copied as they stood at one moment while the server keeps writing.

The file is JSON lines: a header naming the migration revision, then per table
a line naming it and its columns, then one array of values per row.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import Column, Integer, Table, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ods.backup.archive import BackupError
from ods.core.models import Base, Package

INSERT_BATCH = 500


@dataclass
class Exported:
    revision: str
    rows: int = 0
    # Every package filename in the snapshot: the share dir files the backup holds.
    filenames: list[str] = field(default_factory=list)


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def _decoder(column: Column[Any]) -> Callable[[Any], Any]:
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return lambda value: value
    if kind is dt.datetime:
        return lambda value: None if value is None else dt.datetime.fromisoformat(value)
    if kind is dt.date:
        return lambda value: None if value is None else dt.date.fromisoformat(value)
    if kind is bytes:
        return lambda value: None if value is None else base64.b64decode(value)
    return lambda value: value


async def _revision(connection: AsyncConnection) -> str:
    result = await connection.execute(text("SELECT version_num FROM alembic_version"))
    revisions = [row[0] for row in result]
    if len(revisions) != 1:
        raise BackupError("The database has no single migration revision: run `ods db upgrade`.")
    return str(revisions[0])


async def export(engine: AsyncEngine, out: IO[str], seen: Callable[[int], None]) -> Exported:
    """Write every table of `engine`'s database to `out`, from one snapshot."""
    connection = await engine.connect()
    try:
        if engine.dialect.name != "sqlite":
            connection = await connection.execution_options(isolation_level="REPEATABLE READ")
        async with connection.begin():
            exported = Exported(revision=await _revision(connection))
            out.write(json.dumps({"revision": exported.revision}) + "\n")
            for table in Base.metadata.sorted_tables:
                await _export_table(connection, table, out, exported, seen)
    finally:
        await connection.close()
    return exported


async def _export_table(
    connection: AsyncConnection,
    table: Table,
    out: IO[str],
    exported: Exported,
    seen: Callable[[int], None],
) -> None:
    names = [column.name for column in table.columns]
    out.write(json.dumps({"table": table.name, "columns": names}) + "\n")
    is_packages = table.name == Package.__tablename__
    at = names.index("filename") if is_packages else -1
    query = select(table).order_by(*table.primary_key.columns)
    result = await connection.stream(query)
    async for row in result:
        line = json.dumps([_encode(value) for value in row], ensure_ascii=False) + "\n"
        out.write(line)
        exported.rows += 1
        seen(len(line))
        if is_packages:
            exported.filenames.append(row[at])


def _lines(source: IO[str]) -> Iterator[Any]:
    for number, line in enumerate(source, start=1):
        try:
            yield json.loads(line)
        except ValueError:
            raise BackupError(f"database.jsonl line {number} is not JSON.") from None


def read_revision(source: IO[str]) -> str:
    first = next(_lines(source), None)
    if not isinstance(first, dict) or "revision" not in first:
        raise BackupError("database.jsonl does not start with the migration revision.")
    return str(first["revision"])


def load(connection: Connection, source: IO[str], seen: Callable[[int], None]) -> int:
    """Insert the rows of `source` (after its revision line) into the tables of `connection`.

    The tables must exist at the backup's revision and be empty. Returns the rows loaded.
    """
    tables = Base.metadata.tables
    table: Table | None = None
    columns: list[str] = []
    decoders: list[Callable[[Any], Any]] = []
    batch: list[dict[str, Any]] = []
    loaded = 0

    def flush() -> None:
        if table is not None and batch:
            connection.execute(table.insert(), batch)
            batch.clear()

    for item in _lines(source):
        if isinstance(item, dict):
            flush()
            name = str(item.get("table"))
            if name not in tables:
                raise BackupError(f"database.jsonl names a table this ODS lacks: {name!r}.")
            table = tables[name]
            columns = list(item["columns"])
            unknown = set(columns) - set(table.columns.keys())
            if unknown:
                raise BackupError(f"database.jsonl names unknown columns of {name}: {unknown}.")
            decoders = [_decoder(table.columns[column]) for column in columns]
            continue
        if table is None or len(item) != len(columns):
            raise BackupError("database.jsonl has a row outside a table or of the wrong width.")
        batch.append(
            {
                column: decode(value)
                for column, decode, value in zip(columns, decoders, item, strict=True)
            }
        )
        loaded += 1
        if len(batch) >= INSERT_BATCH:
            flush()
            seen(INSERT_BATCH)
    flush()
    _advance_sequences(connection)
    return loaded


def _advance_sequences(connection: Connection) -> None:
    """PostgreSQL's id sequences do not move for ids inserted as given: move them past them."""
    if connection.dialect.name != "postgresql":
        return
    for table in Base.metadata.sorted_tables:
        column = table.columns.get("id")
        if column is None or not isinstance(column.type, Integer) or not column.autoincrement:
            continue  # only integer ids come from a sequence
        connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table.name})) "
                f"WHERE EXISTS (SELECT 1 FROM {table.name})"
            )
        )


def table_names(connection: Connection) -> list[str]:
    return list(inspect(connection).get_table_names())
