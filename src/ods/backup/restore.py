"""`ods backup restore FILE`: a backup back into an empty data dir and database.

Nothing is published until the whole file is read and every member matches
its manifest: members are unpacked into a work dir inside the data dir, the
database is loaded in one transaction (SQLite: into a new file renamed into
place last), and only then do the keys and package files move into place. A
damaged, truncated or altered file, or a failure while loading, leaves the
data dir and the database as they were.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, select
from sqlalchemy.engine import Connection, make_url

from alembic import command
from ods.backup import archive, tables
from ods.backup.archive import BackupError, Extracted
from ods.backup.progress import Progress
from ods.core import migrate, platform
from ods.core.config import Settings
from ods.core.db import create_engine
from ods.core.humanize import timestamp
from ods.core.models import Package


@dataclass(frozen=True)
class Target:
    """Where to restore: the settings, and which keys the admin set explicitly."""

    settings: Settings
    # DATABASE_KEY / SECRET_KEY given in the environment or ODS_CONF: then the
    # backup's key is not written to the data dir, and DATABASE_KEY must match it.
    explicit_database_key: str | None
    explicit_secret_key: str | None
    force: bool = False

    @property
    def sqlite_path(self) -> Path | None:
        url = make_url(self.settings.database_url or "")
        if url.get_backend_name() != "sqlite":
            return None
        return Path(url.database or "")


async def restore_backup(target: Target, path: Path, progress: Progress) -> None:
    settings = target.settings
    size = _size_of(path)
    if not target.force:
        await _refuse_if_not_empty(target)
    platform.make_private_dir(settings.data_dir)
    work = settings.data_dir / f".restore-{secrets.token_hex(4)}"
    platform.make_private_dir(work)
    try:
        progress.start("reading and checking the backup", size)
        extracted = await asyncio.to_thread(archive.extract, path, work, progress.advance)
        progress.finish()
        _check_revision(extracted)
        keys = _keys(extracted, target)
        sqlite_file, created = await _load_database(target, extracted, progress)
        _publish(target, extracted, keys, sqlite_file, created)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    manifest = extracted.manifest
    progress.say(
        f"Restored the backup of {manifest.created} (ODS {manifest.ods_version}): "
        f"{sum(1 for _ in extracted.share_files())} package files. Start the server."
    )


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        raise BackupError(f"{path}: no such file.") from None


def _files_in(directory: Path) -> list[Path]:
    found: list[Path] = []
    for root, _, files in os.walk(directory):
        found.extend(Path(root, name) for name in files)
    return found


async def _refuse_if_not_empty(target: Target) -> None:
    settings = target.settings
    found = _files_in(settings.data_dir)
    if found:
        raise BackupError(
            f"DATA_DIR: {settings.data_dir} is not empty (it holds {found[0]}); restore into "
            "an empty data dir, or add --force to replace what is there."
        )
    sqlite_path = target.sqlite_path
    if sqlite_path is not None:
        if sqlite_path.exists() and sqlite_path.stat().st_size:
            raise BackupError(
                f"DATABASE_URL: {sqlite_path} exists; restore into a new database, "
                "or add --force to replace it."
            )
        return
    engine = create_engine(settings.database_url or "")
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(tables.table_names)
    finally:
        await engine.dispose()
    if names:
        raise BackupError(
            f"DATABASE_URL: the database has tables ({', '.join(sorted(names)[:3])}…); "
            "restore into an empty database, or add --force to drop them."
        )


def _check_revision(extracted: Extracted) -> None:
    heads = ScriptDirectory.from_config(migrate.alembic_config()).get_heads()
    revision = extracted.manifest.revision
    if [revision] != heads:
        raise BackupError(
            f"The backup's database is at migration revision {revision}, this ODS's at "
            f"{', '.join(heads)}: restore it with the ODS version that made it "
            f"({extracted.manifest.ods_version}), then upgrade."
        )


def _keys(extracted: Extracted, target: Target) -> dict[str, str]:
    keys = {
        name: extracted.paths[f"secrets/{name}"].read_text(encoding="ascii").strip()
        for name in archive.SECRETS
    }
    explicit = target.explicit_database_key
    if explicit and explicit != keys["database_key"]:
        raise BackupError(
            "DATABASE_KEY is set to another key than the one the backup's database was "
            "encrypted with; unset it (the backup's key goes to DATA_DIR/secrets/) or set "
            "it to the backup's key."
        )
    return keys


def _drop_all(connection: Connection) -> None:
    existing = MetaData()
    existing.reflect(connection)
    existing.drop_all(connection)


def _load(connection: Connection, extracted: Extracted, force: bool, progress: Progress) -> int:
    if force:
        _drop_all(connection)
    command.upgrade(migrate.alembic_config(connection), "head")
    with extracted.paths[archive.DATABASE].open(encoding="utf-8") as source:
        tables.read_revision(source)
        return tables.load(connection, source, progress.advance)


def _versions(connection: Connection) -> dict[str, tuple[str, int]]:
    """Filename -> the SHA-256 and creation time of its version, as loaded."""
    rows = connection.execute(select(Package.filename, Package.sha256, Package.created))
    return {row.filename: (row.sha256, timestamp(row.created)) for row in rows}


async def _load_database(
    target: Target, extracted: Extracted, progress: Progress
) -> tuple[Path | None, dict[str, tuple[str, int]]]:
    """Load the rows; for SQLite into a new file in the work dir, which is returned, with
    the SHA-256 and creation time of each package (`_versions`)."""
    sqlite_path = target.sqlite_path
    if sqlite_path is not None:
        new_file = extracted.directory / "ods.db"
        url = f"sqlite+aiosqlite:///{new_file}"
        force = False
    else:
        url = target.settings.database_url or ""
        force = target.force
    progress.start("database rows")
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            rows = await connection.run_sync(_load, extracted, force, progress)
            versions = await connection.run_sync(_versions)
    except BackupError:
        raise
    except Exception as exc:
        if engine.dialect.name == "mysql":
            # MariaDB/MySQL commit each CREATE TABLE at once: take out what the load made.
            async with engine.begin() as connection:
                await connection.run_sync(_drop_all)
            if force:
                raise BackupError(
                    f"Loading the database failed: {exc}. With --force its tables had been "
                    "removed already: the database is empty now; the data dir is unchanged."
                ) from exc
        raise BackupError(f"Loading the database failed, nothing was restored: {exc}") from exc
    finally:
        await engine.dispose()
    progress.say(f"database: {rows} rows loaded")
    return (new_file if sqlite_path is not None else None), versions


def _publish(
    target: Target,
    extracted: Extracted,
    keys: dict[str, str],
    sqlite_file: Path | None,
    versions: dict[str, tuple[str, int]],
) -> None:
    settings = target.settings
    if target.force:
        for directory in ("share", "secrets", "staging"):
            for found in _files_in(settings.data_dir / directory):
                found.unlink()
    secrets_dir = settings.data_dir / "secrets"
    platform.make_private_dir(secrets_dir)
    explicit = {
        "database_key": target.explicit_database_key,
        "secret_key": target.explicit_secret_key,
    }
    for name, value in keys.items():
        if not explicit[name]:
            fd = platform.create_private_file(secrets_dir / name)
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(value + "\n")
    settings.share_dir.mkdir(parents=True, exist_ok=True)
    checked = {member.name: member.sha256 for member in extracted.manifest.members}
    for filename, path in extracted.share_files():
        sha256, created_ts = versions.get(filename, ("", 0))
        if checked.get(archive.share_member(filename)) == sha256:
            # The version's bytes: the same Last-Modified as on every server of the
            # mesh, and the start gives it its name under versions/ (`ods.core.storage`).
            os.utime(path, (created_ts, created_ts))
        os.replace(path, settings.share_dir / filename)
    platform.sync_dir(settings.share_dir)
    if sqlite_file is not None:
        assert target.sqlite_path is not None
        final = target.sqlite_path
        for suffix in ("-wal", "-shm", "-journal"):
            final.with_name(final.name + suffix).unlink(missing_ok=True)
        os.replace(sqlite_file, final)
        platform.sync_dir(final.parent)
