"""Reading packages: the list, one package with its chunks, and the package object the API shows.

A package row becomes the API's package object in one place (`package_dict`,
and `package_row_dict` for the list's column tuples), with the live
progress of a download in flight in this process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.db import MAX_ROW_ID, Database
from ods.core.errors import NotFound
from ods.core.humanize import iso, size_hr, timestamp
from ods.core.models import Chunk, Package, Peer
from ods.core.stages import Stage
from ods.core.statuses import Status
from ods.core.uuids import public_uuid, public_uuid_or_none, stored_spellings
from ods.packages.digest import CHUNK_SIZE
from ods.packages.naming import normal_name
from ods.packages.progress import Downloads
from ods.packages.schemas import ChunkOut, PackageDetail, UploadResult

if TYPE_CHECKING:
    from ods.core.context import Context


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
    Package.origin_iss,
    Package.statement.is_not(None),
    Package.sha512,
)


EPOCH = dt.datetime(1970, 1, 1)


SECOND = dt.timedelta(seconds=1)

DOWNLOADING = Status.DOWNLOADING.value

# Where PACKAGE_COLUMNS has the status.
STATUS = 7

# How the list's items are serialised: datetimes to the second, as `iso` shows them.
LIST_JSON_OPTIONS = orjson.OPT_OMIT_MICROSECONDS


def progress_dict(
    downloads: Downloads,
    uuid: str,
    status: str,
    file_size: int,
    chunks_done: int,
    source: str | None,
) -> dict[str, Any] | None:
    """How far a download from a peer has got; None unless Downloading."""
    if status != DOWNLOADING:
        return None
    live = downloads.get(uuid)
    if live is not None:
        chunks_done = live.chunks_done
        rate: int | None = round(live.rate)
    else:
        rate = downloads.watched_rate(uuid, chunks_done, CHUNK_SIZE)
    total = -(-file_size // CHUNK_SIZE)
    return {
        "chunks_done": chunks_done,
        "chunks_total": total,
        "bytes_done": min(file_size, chunks_done * CHUNK_SIZE),
        "rate": rate,
        "source": live.source if live is not None else source,
    }


def package_row_dict(row: Sequence[Any], downloads: Downloads) -> dict[str, Any]:
    """One row of PACKAGE_COLUMNS as the API shows it; the list's hot path.

    `created` stays a datetime: serialised with LIST_JSON_OPTIONS, orjson writes it
    as `iso` does, in C.
    """
    (
        id_,
        uuid,
        filename,
        size,
        sha1,
        sha256,
        stage,
        status,
        reason,
        created,
        done,
        source,
        origin_iss,
        verified,
        sha512,
    ) = row
    item = {
        "created": created,
        "created_ts": (created - EPOCH) // SECOND,
        "file_size": size,
        "file_size_hr": size_hr(size),
        "filename": filename,
        "id": id_,
        "sha1": sha1,
        "sha256": sha256,
        "sha512": sha512,
        "stage": stage,
        "status": status,
        "status_reason": reason,
        "uuid": public_uuid(uuid),
        "progress": None,
        "origin_iss": origin_iss,
        "origin_verified": bool(verified),
    }
    if status == DOWNLOADING:
        item["status_reason"] = downloads.status_reason(uuid, status, reason)
        item["progress"] = progress_dict(downloads, uuid, status, size, done, source)
    return item


def package_dict(
    package: Package, downloads: Downloads, source: str | None = None
) -> dict[str, Any]:
    return {
        "created": iso(package.created),
        "created_ts": timestamp(package.created),
        "file_size": package.file_size,
        "file_size_hr": size_hr(package.file_size),
        "filename": package.filename,
        "id": package.id,
        "sha1": package.sha1,
        "sha256": package.sha256,
        "sha512": package.sha512,
        "stage": package.stage,
        "status": package.status,
        "status_reason": downloads.status_reason(
            package.uuid, package.status, package.status_reason
        ),
        "uuid": public_uuid(package.uuid),
        "progress": progress_dict(
            downloads,
            package.uuid,
            package.status,
            package.file_size,
            package.chunks_done,
            source,
        ),
        "origin_iss": package.origin_iss,
        "origin_verified": package.statement is not None,
    }


def upload_result(package: Package, *, replaced_uuid: str | None) -> UploadResult:
    """What an upload answers: the published package, and the one it replaced if any."""
    return UploadResult(
        filename=package.filename,
        sha1=package.sha1,
        sha256=package.sha256,
        sha512=package.sha512,
        id=package.id,
        uuid=public_uuid(package.uuid),
        file_size=package.file_size,
        stage=Stage(package.stage),
        status=Status(package.status),
        replaced=replaced_uuid is not None,
        replaced_uuid=public_uuid_or_none(replaced_uuid),
    )


async def list_packages(
    context: Context,
    *,
    stage: Stage | None = None,
    status: Status | None = None,
    search: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[Any], int]:
    """Packages as items to serialise with orjson and LIST_JSON_OPTIONS (plain dicts, or
    the JSON of an unchanged one), and how many match in all."""
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
    async with context.db.engine.connect() as connection:
        rows = (await connection.execute(query)).all()
        total = len(rows) if limit is None and not offset else await connection.scalar(count)
    items = context.part(ListedItems).items(
        rows, context.part(Downloads), complete=not conditions and limit is None and not offset
    )
    return items, int(total or 0)


class ListedItems:
    """The list's items as serialised JSON, by package id, with the row each was built
    from, kept from the last full listing.

    An item is a function of its row alone, except while the package is Downloading
    (its progress is live; rebuilt every time), so a listing reuses the bytes of every
    row that is unchanged since the last one: the console polls the list, and building
    10,000 items took longer than fetching them.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[tuple[Any, ...], orjson.Fragment]] = {}

    @classmethod
    def for_context(cls, context: Context) -> Self:
        return cls()

    def close(self) -> None:
        self._by_id.clear()

    def items(
        self, rows: Sequence[Sequence[Any]], downloads: Downloads, *, complete: bool
    ) -> list[Any]:
        """Each row's item; a complete listing (every package) replaces what is kept."""
        known = self._by_id
        kept: dict[int, tuple[tuple[Any, ...], orjson.Fragment]] | None = {} if complete else None
        items: list[Any] = []
        for row in rows:
            values = tuple(row)
            if values[STATUS] == DOWNLOADING:
                items.append(package_row_dict(values, downloads))
                continue
            found = known.get(values[0])
            if found is None or found[0] != values:
                body = orjson.dumps(package_row_dict(values, downloads), option=LIST_JSON_OPTIONS)
                # A copy of exactly its size: orjson's answer keeps ~4 KiB of room.
                found = (values, orjson.Fragment(bytes(memoryview(body))))
            if kept is not None:
                kept[values[0]] = found
            items.append(found[1])
        if kept is not None:
            self._by_id = kept
        return items


async def find(session: AsyncSession, ref: str, *, lock: bool = False) -> Package:
    query = select(Package)
    if lock:
        query = query.with_for_update()
    if ref.isdigit() and int(ref) <= MAX_ROW_ID:
        found = (await session.execute(query.where(Package.id == int(ref)))).scalar_one_or_none()
        if found is not None:
            return found
    # Either spelling finds it: names are stored NFC, or as a version before that kept them.
    spellings = {ref, normal_name(ref)}
    found = (
        await session.execute(query.where(Package.filename.in_(spellings)))
    ).scalar_one_or_none()
    uuids = stored_spellings(ref)
    if found is None and uuids:
        found = (await session.execute(query.where(Package.uuid.in_(uuids)))).scalar_one_or_none()
    if found is None:
        raise NotFound(f"No package with id, filename or uuid {ref!r}.")
    return found


async def get_package(context: Context, ref: str) -> PackageDetail:
    async with context.db.session() as session:
        package = await find(session, ref)
        source = await session.get(Peer, package.source_peer_id) if package.source_peer_id else None
        chunks = (
            await session.execute(
                select(Chunk.index, Chunk.sha1, Chunk.sha256)
                .where(Chunk.package_id == package.id)
                .order_by(Chunk.index)
            )
        ).all()
    return PackageDetail(
        **package_dict(package, context.part(Downloads), source.name if source else None),
        chunks=[ChunkOut(index=c.index, sha1=c.sha1, sha256=c.sha256) for c in chunks],
    )


async def find_public(db: Database, filename: str) -> Package | None:
    async with db.session() as session:
        query = select(Package).where(
            Package.filename == filename, Package.status == Status.PUBLIC.value
        )
        return (await session.execute(query)).scalar_one_or_none()
