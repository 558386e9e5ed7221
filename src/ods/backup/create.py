"""`ods backup create FILE`: a consistent copy of a running server in one file.

The database is exported first, from one snapshot; then the share dir files
that snapshot names, which ODS never rewrites in place (a publish renames a new
file in, a delete renames it out). A package deleted while the backup runs is
left out with a warning; one published meanwhile is not in the snapshot and so
not in the backup either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from pathlib import Path
from typing import IO

import ods
from ods.backup import archive, tables
from ods.backup.archive import ArchiveWriter, BackupError, Manifest
from ods.backup.progress import Progress
from ods.core import platform
from ods.core.config import Settings
from ods.core.db import Database


async def create_backup(settings: Settings, db: Database, path: Path, progress: Progress) -> None:
    if settings.database_key is None or settings.secret_key is None:
        raise BackupError(
            f"DATA_DIR: {settings.data_dir} has no secrets/ and no keys are set: "
            "is it this server's data dir?"
        )
    writer = ArchiveWriter(path)
    dump = path.with_name(f".{path.name}.database.part")
    try:
        writer.add_bytes(archive.HEADER, archive.header_bytes(ods.__version__))
        exported = await _export_database(db, dump, progress)
        with dump.open("rb") as source:
            size = os.fstat(source.fileno()).st_size
            writer.add_file(archive.DATABASE, source, size, lambda _: None)
        dump.unlink()
        writer.add_bytes("secrets/secret_key", settings.secret_key.encode("ascii") + b"\n")
        writer.add_bytes("secrets/database_key", settings.database_key.encode("ascii") + b"\n")
        _add_share_files(writer, settings.share_dir, exported.filenames, progress)
        manifest = Manifest(
            ods_version=ods.__version__,
            revision=exported.revision,
            backend=db.engine.dialect.name,
            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        writer.close(manifest)
    except BaseException:
        writer.abort()
        dump.unlink(missing_ok=True)
        raise
    total = sum(member.size for member in writer.members)
    progress.say(
        f"Backup written to {path}: {exported.rows} rows, "
        f"{len(writer.members) - 4} package files, {total} bytes. "
        "It holds the server's keys: keep it as safe as the server."
    )


async def _export_database(db: Database, dump: Path, progress: Progress) -> tables.Exported:
    progress.start("database")
    with _open_dump(dump) as out:
        exported = await tables.export(db.engine, out, progress.advance)
    progress.finish()
    progress.say(f"database: {exported.rows} rows at migration revision {exported.revision}")
    return exported


def _open_dump(dump: Path) -> IO[str]:
    """A new private file for the rows, replacing one a killed backup left."""
    dump.unlink(missing_ok=True)
    return os.fdopen(platform.create_private_file(dump), "w", encoding="utf-8")


def _add_share_files(
    writer: ArchiveWriter, share_dir: Path, filenames: list[str], progress: Progress
) -> None:
    sizes = {}
    for filename in filenames:
        with contextlib.suppress(FileNotFoundError):
            sizes[filename] = (share_dir / filename).stat().st_size
    progress.start("share", sum(sizes.values()))
    missing = len(filenames) - len(sizes)
    for filename in sizes:
        try:
            # Once open, a delete meanwhile cannot take the bytes away.
            source = (share_dir / filename).open("rb")
        except FileNotFoundError:
            missing += 1
            continue
        with source:
            size = os.fstat(source.fileno()).st_size
            writer.add_file(archive.share_member(filename), source, size, progress.advance)
    progress.finish()
    if missing:
        progress.say(
            f"warning: {missing} package(s) of the snapshot had no file in the share dir "
            "(not yet published, or deleted meanwhile); the backup has their rows only."
        )
