"""The sending side of replication: what this server offers its peers, and telling them.

After a package becomes Public here, every peer that would accept it (its
stage is at least the peer's, and the peer is not firewalled) gets a
`notify` job; the peer fetches the package itself. Peers read this server's
published packages, their chunk digests and their chunks through the
signed peer API.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ods.core.errors import InvalidInput, NotFound, OdsError
from ods.core.humanize import timestamp
from ods.core.models import Chunk, Package
from ods.core.stages import Stage
from ods.jobs import runner as jobs
from ods.mesh import peers
from ods.mesh.protocol.client import PeerClient, PeerLink
from ods.mesh.protocol.wire import ChunkDigests, Inventory, PackageCard, PackageManifest
from ods.packages.digest import CHUNK_SIZE
from ods.packages.schemas import Status

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)


def card(package: Package) -> PackageCard:
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
    )


async def _public(context: Context, uuid: str) -> Package:
    async with context.db.session() as session:
        package = (
            await session.execute(
                select(Package).where(Package.uuid == uuid, Package.status == Status.PUBLIC.value)
            )
        ).scalar_one_or_none()
    if package is None:
        raise NotFound(f"No published package with uuid {uuid}.")
    return package


async def published_cards(context: Context) -> list[PackageCard]:
    async with context.db.session() as session:
        rows = (
            await session.execute(
                select(Package).where(Package.status == Status.PUBLIC.value).order_by(Package.id)
            )
        ).scalars()
        return [card(package) for package in rows]


async def manifest(context: Context, uuid: str) -> PackageManifest:
    package = await _public(context, uuid)
    async with context.db.session() as session:
        chunks = (
            await session.execute(
                select(Chunk.index, Chunk.sha1, Chunk.sha256)
                .where(Chunk.package_id == package.id)
                .order_by(Chunk.index)
            )
        ).all()
    return PackageManifest(
        **card(package).model_dump(),
        chunks=[ChunkDigests(index=i, sha1=s1, sha256=s256) for i, s1, s256 in chunks],
    )


MAX_RUN_CHUNKS = 64
SEND_SIZE = 256 * 1024  # bytes per write to the connection: less in flight when a receiver dies


async def _chunk_source(context: Context, uuid: str) -> tuple[str, int]:
    source = context.chunk_sources.get(uuid)
    if source is None:
        package = await _public(context, uuid)
        source = (package.filename, package.file_size)
        context.chunk_sources.put(uuid, source)
    return source


def _read_at(path: Path, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


async def read_chunk(context: Context, uuid: str, index: int) -> bytes:
    """The bytes of one chunk."""
    run = await chunk_run(context, uuid, index, 1)
    try:
        return await asyncio.to_thread(_read_at, run.path, run.offset, run.length)
    except FileNotFoundError:
        context.chunk_sources.clear()
        raise NotFound(f"No published package with uuid {uuid}.") from None


@dataclass(frozen=True)
class ChunkRun:
    """Consecutive chunks of a published file, as one byte range."""

    path: Path
    offset: int
    length: int

    async def stream(self) -> AsyncIterator[bytes]:
        """The range in 1 MiB reads; stops short if the file is withdrawn meanwhile."""
        fd = await asyncio.to_thread(os.open, self.path, os.O_RDONLY)
        try:
            offset, end = self.offset, self.offset + self.length
            while offset < end:
                data = await asyncio.to_thread(os.pread, fd, min(CHUNK_SIZE, end - offset), offset)
                if not data:
                    return
                offset += len(data)
                for start in range(0, len(data), SEND_SIZE):
                    yield data[start : start + SEND_SIZE]
        finally:
            os.close(fd)


async def chunk_run(context: Context, uuid: str, start: int, count: int) -> ChunkRun:
    """Chunks `start` to `start + count - 1` of a published package."""
    filename, size = await _chunk_source(context, uuid)
    total = max(1, -(-size // CHUNK_SIZE))
    if start < 0 or start >= total:
        raise NotFound(f"{filename} has no chunk {start} (it has {total}).")
    if not 1 <= count <= MAX_RUN_CHUNKS:
        raise InvalidInput(f"Ask for 1 to {MAX_RUN_CHUNKS} chunks at a time, not {count}.")
    path = context.files.published(filename)
    if not path.exists():
        context.chunk_sources.clear()
        raise NotFound(f"No published package with uuid {uuid}.")
    offset = start * CHUNK_SIZE
    return ChunkRun(path, offset, min(size, (start + count) * CHUNK_SIZE) - offset)


def notify_key(uuid: str, peer_iss: str) -> str:
    return f"notify:{uuid}:{peer_iss}"


async def announce(context: Context, uuid: str, *, skip_iss: str | None = None) -> int:
    """Queue a notification of a Public package to every peer that would take it."""
    package = await _public(context, uuid)
    stage = Stage(package.stage)
    keys = []
    async with context.db.transaction() as session:
        for link in await peers.links(context):
            if link.iss in (skip_iss, package.origin_iss) or link.firewalled_mode:
                continue
            if not link.stage.accepts(stage):
                continue
            key = notify_key(uuid, link.iss)
            await jobs.add_job(session, "notify", key, {"uuid": uuid, "peer": link.iss})
            keys.append(key)
    await jobs.dispatch(context, keys)
    return len(keys)


async def offer_missing(context: Context, link: PeerLink, inventory: Inventory) -> int:
    """Notify a peer of this server's packages its inventory lacks and it would take."""
    if link.firewalled_mode:
        return 0
    theirs = {p.uuid for p in inventory.packages} | {t.uuid for t in inventory.tombstones}
    mine = await published_cards(context)
    keys = []
    async with context.db.transaction() as session:
        for package in mine:
            if package.uuid in theirs or not link.stage.accepts(package.stage):
                continue
            key = notify_key(package.uuid, link.iss)
            await jobs.add_job(session, "notify", key, {"uuid": package.uuid, "peer": link.iss})
            keys.append(key)
    await jobs.dispatch(context, keys)
    return len(keys)


@jobs.job("notify", max_attempts=12)
async def notify_job(context: Context, payload: dict[str, Any]) -> None:
    link = await peers.link_by_iss(context, payload["peer"])
    if link is None:
        return
    try:
        package = await _public(context, payload["uuid"])
    except NotFound:
        return
    client = PeerClient(context.http, context.iss, link)
    try:
        await client.call("POST", "/notify", {"uuid": package.uuid, "stage": package.stage})
    except OdsError as exc:
        await peers.record_failure(context, link.id, exc)
        raise
    await peers.record_contact(context, link.id, None)
