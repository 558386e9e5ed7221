"""The sending side of replication: what this server offers its peers, and telling them.

After a package becomes Public here, every peer that would accept it (its
stage is at least the peer's, and the peer is not firewalled) gets a
`notify` job; the peer fetches the package itself. Peers read this server's
published packages, their chunk digests and their chunks through the
signed peer API. A package withdrawn here by its stage is still offered to
peers (its bytes are as good as ever, and a peer at an earlier stage may
take it); only `/share` stops serving it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from ods.core import platform
from ods.core.errors import InvalidInput, NotFound
from ods.core.humanize import timestamp
from ods.core.models import Chunk, Package
from ods.core.stages import Stage
from ods.core.statuses import IN_SHARE
from ods.mesh.protocol.wire import ChunkDigests, PackageCard, PackageManifest
from ods.mesh.state import ChunkSource, mesh_state
from ods.packages.digest import CHUNK_SIZE
from ods.trust.verify import stored

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)

HELD = IN_SHARE  # what peers may read from this server


def package_card(package: Package) -> PackageCard:
    return PackageCard(
        uuid=package.uuid,
        filename=package.filename,
        file_size=package.file_size,
        sha1=package.sha1,
        sha256=package.sha256,
        stage=Stage(package.stage),
        created_ts=timestamp(package.created),
        origin_iss=package.origin_iss,
        replaces=package.replaces,
        statement=stored(package.statement),
        stage_statement=stored(package.stage_statement),
    )


async def published_package(context: Context, uuid: str) -> Package:
    async with context.db.session() as session:
        package = (
            await session.execute(
                select(Package).where(Package.uuid == uuid, Package.status.in_(HELD))
            )
        ).scalar_one_or_none()
    if package is None:
        raise NotFound(f"No published package with uuid {uuid}.")
    return package


async def published_cards(context: Context) -> list[PackageCard]:
    async with context.db.session() as session:
        rows = (
            await session.execute(
                select(Package).where(Package.status.in_(HELD)).order_by(Package.id)
            )
        ).scalars()
        return [package_card(package) for package in rows]


async def manifest(context: Context, uuid: str) -> PackageManifest:
    package = await published_package(context, uuid)
    async with context.db.session() as session:
        chunks = (
            await session.execute(
                select(Chunk.index, Chunk.sha1, Chunk.sha256)
                .where(Chunk.package_id == package.id)
                .order_by(Chunk.index)
            )
        ).all()
    return PackageManifest(
        **package_card(package).model_dump(),
        chunks=[ChunkDigests(index=i, sha1=s1, sha256=s256) for i, s1, s256 in chunks],
    )


MAX_RUN_CHUNKS = 64


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_mtime_ns


async def _chunk_source(context: Context, uuid: str) -> ChunkSource:
    """The published file of a Public package; the cached entry only while the file is the same."""
    sources = mesh_state(context).chunk_sources
    source = sources.get(uuid)
    if source is not None:
        seen = await asyncio.to_thread(_identity, context.files.published(source.filename))
        if seen == (source.inode, source.mtime_ns):
            return source
    package = await published_package(context, uuid)
    seen = await asyncio.to_thread(_identity, context.files.published(package.filename))
    if seen is None:
        raise NotFound(f"No published package with uuid {uuid}.")
    source = ChunkSource(package.filename, package.file_size, *seen)
    sources.put(uuid, source)
    return source


def _read_at(path: Path, offset: int, length: int) -> bytes:
    fd = platform.open_file(path, os.O_RDONLY)
    try:
        return platform.read_at(fd, length, offset)
    finally:
        os.close(fd)


async def read_chunk(context: Context, uuid: str, index: int) -> bytes:
    """The bytes of one chunk."""
    run = await chunk_run(context, uuid, index, 1)
    try:
        return await asyncio.to_thread(_read_at, run.path, run.offset, run.length)
    except FileNotFoundError:
        raise NotFound(f"No published package with uuid {uuid}.") from None


@dataclass(frozen=True)
class ChunkRun:
    """Consecutive chunks of a published file, as one byte range."""

    path: Path
    offset: int
    length: int


async def chunk_run(context: Context, uuid: str, start: int, count: int) -> ChunkRun:
    """Chunks `start` to `start + count - 1` of a published package."""
    source = await _chunk_source(context, uuid)
    total = max(1, -(-source.size // CHUNK_SIZE))
    if start < 0 or start >= total:
        raise NotFound(f"{source.filename} has no chunk {start} (it has {total}).")
    if not 1 <= count <= MAX_RUN_CHUNKS:
        raise InvalidInput(f"Ask for 1 to {MAX_RUN_CHUNKS} chunks at a time, not {count}.")
    offset = start * CHUNK_SIZE
    length = min(source.size, (start + count) * CHUNK_SIZE) - offset
    return ChunkRun(context.files.published(source.filename), offset, length)
