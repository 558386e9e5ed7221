"""Package operations: publish an upload, list, look up, delete, change stage, recover."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid as uuidlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.db import Database
from ods.core.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from ods.core.humanize import iso, size_hr, timestamp
from ods.core.models import Chunk, Package, Peer, Tombstone, utcnow
from ods.core.stages import Stage
from ods.events.catalogue import (
    DeleteReason,
    PackageDeleted,
    PackageReplaced,
    PackageStageChanged,
    PackageUploaded,
    package_facts,
)
from ods.events.log import record
from ods.packages.digest import CHUNK_SIZE
from ods.packages.progress import DOWNLOADS
from ods.packages.schemas import (
    ChunkOut,
    PackageDetail,
    PackageOut,
    Status,
    UploadResult,
)
from ods.packages.storage import PackageFiles
from ods.packages.upload import UploadForm, UploadParser, multipart_boundary

log = logging.getLogger(__name__)

PACKAGE_COLUMNS = (
    Package.id,
    Package.uuid,
    Package.filename,
    Package.file_size,
    Package.sha1,
    Package.sha256,
    Package.stage,
    Package.status,
    Package.status_reason,
    Package.created,
    Package.chunks_done,
    Peer.name,
)
EPOCH = dt.datetime(1970, 1, 1)
SECOND = dt.timedelta(seconds=1)


def parse_stage(value: str) -> Stage:
    try:
        return Stage(value.strip().capitalize())
    except ValueError:
        raise InvalidInput(f"Unknown stage {value!r}; use Dev, Test or Prod.") from None


def is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def progress_dict(
    uuid: str, status: str, file_size: int, chunks_done: int, source: str | None
) -> dict[str, Any] | None:
    """How far a download from a peer has got; None unless Downloading."""
    if status != Status.DOWNLOADING.value:
        return None
    live = DOWNLOADS.get(uuid)
    if live is not None:
        chunks_done = live.chunks_done
    total = -(-file_size // CHUNK_SIZE)
    return {
        "chunks_done": chunks_done,
        "chunks_total": total,
        "bytes_done": min(file_size, chunks_done * CHUNK_SIZE),
        "rate": round(live.rate) if live is not None else None,
        "source": live.source if live is not None else source,
    }


def package_row_dict(row: Sequence[Any]) -> dict[str, Any]:
    """One row of PACKAGE_COLUMNS as the API shows it; the list's hot path."""
    (id_, uuid, filename, size, sha1, sha256, stage, status, reason, created, done, source) = row
    return {
        "created": created.isoformat(timespec="seconds"),
        "created_ts": (created - EPOCH) // SECOND,
        "file_size": size,
        "file_size_hr": size_hr(size),
        "filename": filename,
        "id": id_,
        "sha1": sha1,
        "sha256": sha256,
        "stage": stage,
        "status": status,
        "status_reason": reason,
        "uuid": uuid,
        "progress": progress_dict(uuid, status, size, done, source),
    }


def package_dict(package: Package, source: str | None = None) -> dict[str, Any]:
    return {
        "created": iso(package.created),
        "created_ts": timestamp(package.created),
        "file_size": package.file_size,
        "file_size_hr": size_hr(package.file_size),
        "filename": package.filename,
        "id": package.id,
        "sha1": package.sha1,
        "sha256": package.sha256,
        "stage": package.stage,
        "status": package.status,
        "status_reason": package.status_reason,
        "uuid": package.uuid,
        "progress": progress_dict(
            package.uuid, package.status, package.file_size, package.chunks_done, source
        ),
    }


async def list_packages(
    db: Database,
    *,
    stage: Stage | None = None,
    status: Status | None = None,
    search: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Packages as plain dicts (fast to serialise), and how many match in all."""
    query = select(*PACKAGE_COLUMNS).outerjoin(Peer, Peer.id == Package.source_peer_id)
    count = select(func.count()).select_from(Package)
    conditions = []
    if stage is not None:
        conditions.append(Package.stage == stage.value)
    if status is not None:
        conditions.append(Package.status == status.value)
    if search:
        conditions.append(Package.filename.contains(search, autoescape=True))
    if conditions:
        query = query.where(*conditions)
        count = count.where(*conditions)
    query = query.order_by(Package.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    async with db.engine.connect() as connection:
        rows = (await connection.execute(query)).all()
        total = len(rows) if limit is None and not offset else await connection.scalar(count)
    return [package_row_dict(row) for row in rows], int(total or 0)


async def _find(session: AsyncSession, ref: str, *, lock: bool = False) -> Package:
    query = select(Package)
    if lock:
        query = query.with_for_update()
    if ref.isdigit():
        found = (await session.execute(query.where(Package.id == int(ref)))).scalar_one_or_none()
        if found is not None:
            return found
    found = (await session.execute(query.where(Package.filename == ref))).scalar_one_or_none()
    if found is None:
        raise NotFound(f"No package with id or filename {ref!r}.")
    return found


async def get_package(db: Database, ref: str) -> PackageDetail:
    async with db.session() as session:
        package = await _find(session, ref)
        source = await session.get(Peer, package.source_peer_id) if package.source_peer_id else None
        chunks = (
            await session.execute(
                select(Chunk.index, Chunk.sha1, Chunk.sha256)
                .where(Chunk.package_id == package.id)
                .order_by(Chunk.index)
            )
        ).all()
    return PackageDetail(
        **package_dict(package, source.name if source else None),
        chunks=[ChunkOut(index=c.index, sha1=c.sha1, sha256=c.sha256) for c in chunks],
    )


async def find_public(db: Database, filename: str) -> Package | None:
    async with db.session() as session:
        query = select(Package).where(
            Package.filename == filename, Package.status == Status.PUBLIC.value
        )
        return (await session.execute(query)).scalar_one_or_none()


def _chunk_rows(package_id: int, form: UploadForm) -> list[dict[str, Any]]:
    return [
        {"package_id": package_id, "index": c.index, "sha1": c.sha1, "sha256": c.sha256}
        for c in form.digests.chunks
    ]


async def _insert_chunks(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 1000):
        await session.execute(insert(Chunk), list(rows[start : start + 1000]))


async def publish_upload(
    db: Database,
    files: PackageFiles,
    form: UploadForm,
    upload_uuid: str,
    stage: Stage,
    replace: bool,
    actor: str,
) -> UploadResult:
    """Record the staged upload, move it into the share dir, and mark it Public.

    The row is committed as `Publishing` before the rename, so a crash at any
    point is finished by `recover()` at the next start.
    """
    digests = form.digests
    replaced = False
    replaced_uuid: str | None = None
    try:
        async with db.transaction() as session:
            existing = (
                await session.execute(select(Package).where(Package.filename == form.filename))
            ).scalar_one_or_none()
            same = existing is not None and existing.sha256 == digests.sha256
            if same and existing is not None and existing.status == Status.PUBLIC.value:
                form.staged.unlink(missing_ok=True)
                return _upload_result(existing, replaced=False)
            if existing is not None and existing.status == Status.PUBLISHING.value:
                raise Conflict(f"{form.filename!r} is being published; try again shortly.")
            # A Failed package serves nothing, so an upload may take its place unasked.
            if existing is not None and not replace and existing.status != Status.FAILED.value:
                raise Conflict(
                    f"A package named {form.filename!r} exists with other content; "
                    "send replace=true to replace it."
                )
            if existing is not None:
                replaced = True
                replaced_uuid = existing.uuid
                await bury(session, existing.uuid, existing.filename, "replaced")
                await session.execute(delete(Chunk).where(Chunk.package_id == existing.id))
                package = existing
                package.created = utcnow()
            else:
                package = Package(filename=form.filename)
                session.add(package)
            package.uuid = upload_uuid
            package.replaces = replaced_uuid
            package.file_size = digests.size
            package.sha1 = digests.sha1
            package.sha256 = digests.sha256
            package.stage = stage.value
            package.status = Status.PUBLISHING.value
            package.status_reason = None
            await session.flush()
            await _insert_chunks(session, _chunk_rows(package.id, form))
            facts = package_facts(package)
            if replaced_uuid is None:
                await record(session, PackageUploaded(**facts), actor=actor)
            else:
                await record(
                    session, PackageReplaced(**facts, replaced_uuid=replaced_uuid), actor=actor
                )
            package_id = package.id
    except IntegrityError:
        form.staged.unlink(missing_ok=True)
        raise Conflict(f"A package named {form.filename!r} is being uploaded already.") from None
    except BaseException:
        form.staged.unlink(missing_ok=True)
        raise
    await files.publish(form.staged, form.filename)
    async with db.transaction() as session:
        published = await session.get(Package, package_id)
        assert published is not None
        published.status = Status.PUBLIC.value
        return _upload_result(published, replaced=replaced, replaced_uuid=replaced_uuid)


def _upload_result(
    package: Package, *, replaced: bool, replaced_uuid: str | None = None
) -> UploadResult:
    return UploadResult(
        filename=package.filename,
        sha1=package.sha1,
        sha256=package.sha256,
        id=package.id,
        uuid=package.uuid,
        file_size=package.file_size,
        stage=Stage(package.stage),
        status=Status(package.status),
        replaced=replaced,
        replaced_uuid=replaced_uuid,
    )


async def delete_package(
    db: Database,
    files: PackageFiles,
    ref: str,
    actor: str | None,
    *,
    by_uuid: bool = False,
    reason: DeleteReason = "deleted",
    peer: str | None = None,
    peer_iss: str | None = None,
) -> Package:
    """Delete a package version: its row, its published or half-fetched file.

    A tombstone for the version is recorded in the same transaction, so the
    mesh does not bring it back. `peer` and `peer_iss` name the registered
    server the delete came from, if it came from one. Returns the deleted row
    (detached).
    """
    trash: Path | None = None
    try:
        async with db.transaction() as session:
            if by_uuid:
                package = (
                    await session.execute(
                        select(Package).where(Package.uuid == ref).with_for_update()
                    )
                ).scalar_one_or_none()
                if package is None:
                    raise NotFound(f"No package with uuid {ref!r}.")
            else:
                package = await _find(session, ref, lock=True)
            if package.status == Status.PUBLISHING.value:
                raise Conflict(f"{package.filename!r} is being published; try again shortly.")
            filename = package.filename
            deleted = PackageDeleted(
                **package_facts(package),
                reason=reason,
                peer=peer,
                peer_iss=peer_iss,
            )
            await session.delete(package)
            await bury(session, package.uuid, filename, reason)
            await record(session, deleted, actor=actor)
            # Out of the share dir before the commit, so an upload of the same name
            # that publishes right after cannot have its new file removed.
            if package.status == Status.PUBLIC.value:
                trash = await files.withdraw(filename, package.uuid)
    except BaseException:
        if trash is not None:
            await files.publish(trash, filename)
        raise
    if trash is not None:
        await asyncio.to_thread(trash.unlink, True)
    await asyncio.to_thread(files.download(package.uuid).unlink, True)
    return package


async def bury(session: AsyncSession, uuid: str, filename: str, reason: str) -> bool:
    """Record that a version is gone for good. False if it was recorded already."""
    if await session.get(Tombstone, uuid) is not None:
        return False
    session.add(Tombstone(uuid=uuid, filename=filename, reason=reason))
    return True


async def change_stage(db: Database, ref: str, stage: Stage, actor: str) -> PackageOut:
    async with db.transaction() as session:
        package = await _find(session, ref, lock=True)
        previous = package.stage
        if previous != stage.value:
            package.stage = stage.value
            await record(
                session,
                PackageStageChanged(**package_facts(package), previous_stage=Stage(previous)),
                actor=actor,
            )
        return PackageOut.model_validate(package_dict(package))


async def recover(db: Database, files: PackageFiles) -> None:
    """Finish publishes a crash interrupted; remove uploads that never completed."""
    async with db.transaction() as session:
        publishing = (
            await session.execute(select(Package).where(Package.status == Status.PUBLISHING.value))
        ).scalars()
        keep: set[str] = set()
        for package in publishing:
            staged = files.upload(package.uuid)
            if not staged.exists():
                staged = files.download(package.uuid)
            if staged.exists():
                await files.publish(staged, package.filename)
            if files.published(package.filename).exists():
                package.status = Status.PUBLIC.value
                log.info("finished publishing %s after a restart", package.filename)
            else:
                package.status = Status.FAILED.value
                package.status_reason = "The file was lost while it was being published."
            keep.add(staged.name)
    for leftover in files.leftover_uploads():
        if leftover.name not in keep:
            log.info("removing interrupted upload %s", leftover.name)
            leftover.unlink(missing_ok=True)


def new_upload_uuid() -> str:
    return str(uuidlib.uuid4())


async def upload_package(
    db: Database,
    files: PackageFiles,
    stream: AsyncIterator[bytes],
    *,
    content_type: str | None,
    content_length: str | None,
    max_size: int,
    stage: Stage | None,
    replace: bool,
    actor: str,
) -> UploadResult:
    """Stream a multipart upload into staging, hashing as it goes, then publish it."""
    boundary = multipart_boundary(content_type)
    if content_length and content_length.isdigit() and int(content_length) > max_size + 64 * 1024:
        raise PayloadTooLarge(
            f"The upload ({content_length} bytes) is larger than the limit of {max_size} bytes "
            "(ODS_MAX_UPLOAD_SIZE)."
        )
    upload_uuid = new_upload_uuid()

    def check_field(name: str, value: str) -> None:
        if name == "stage":
            parse_stage(value)

    parser = UploadParser(boundary, lambda: files.upload(upload_uuid), max_size, check_field)
    form = await parser.feed(stream)
    try:
        if "stage" in form.fields:
            stage = parse_stage(form.fields["stage"])
        replace = replace or is_true(form.fields.get("replace"))
    except BaseException:
        form.staged.unlink(missing_ok=True)
        raise
    return await publish_upload(db, files, form, upload_uuid, stage or Stage.PROD, replace, actor)
