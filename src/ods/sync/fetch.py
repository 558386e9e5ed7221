"""The receiving side of replication: take a notification, fetch, verify, publish, relay.

A fetch asks for runs of 1 MiB chunks (ODS_FETCH_PARALLEL_CHUNKS requests
in flight) and writes what arrives in place into one staging file; a
verifier reads the chunks back in order, checks each one's SHA-256 and SHA1
(a bad one is fetched again), and hashes the whole file as it goes. After a
crash or restart the staging file is the state: the chunks in it that match
their digests are kept, only the others are fetched. When every chunk is
checked, the whole file's SHA-256 and SHA1 are compared, and it is published
the way uploads are (Publishing, rename, Public), then announced to this
server's own peers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ods.errors import InvalidInput, OdsError
from ods.events import record_event
from ods.humanize import size_hr, timestamp
from ods.identity import get_identity
from ods.models import Chunk, Package, Tombstone
from ods.packages import service
from ods.packages.digest import CHUNK_SIZE
from ods.packages.naming import check_filename
from ods.packages.progress import DOWNLOADS, Progress
from ods.packages.schemas import Status
from ods.stages import Stage
from ods.sync import jobs, peers, replication
from ods.sync.client import ChunkTooLarge, PeerClient, PeerLink, PeerUnreachable, open_stream
from ods.sync.schemas import Notification, PackageManifest

if TYPE_CHECKING:
    from ods.context import Context

log = logging.getLogger(__name__)

CHUNK_TRIES = 3
PROGRESS_INTERVAL = 1.0
RUN_CHUNKS = 8  # chunks asked for in one request
HASH_BATCH_CHUNKS = 16  # chunks checked in one trip to a worker thread
# Received bytes are written this many at a time (a divisor of CHUNK_SIZE):
# pieces that stay in the CPU's cache, and a chunk is on disk a moment after
# its last byte arrives.
WRITE_SIZE = 256 * 1024


class BadChunk(Exception):
    pass


def fetch_key(uuid: str) -> str:
    return f"fetch:{uuid}"


def chunk_count(size: int) -> int:
    return -(-size // CHUNK_SIZE)


async def accept_notification(context: Context, link: PeerLink, note: Notification) -> bool:
    """Queue a fetch unless this server has, is fetching, or refuses the package."""
    me = await get_identity(context.db, context.cipher)
    if await follow_stage_change(context, link, note):
        await replication.announce(context, note.uuid, skip_iss=link.iss)
        return False
    if not me.stage.accepts(note.stage):
        return False
    return await want(context, link, note.uuid)


async def want(context: Context, link: PeerLink, uuid: str) -> bool:
    """Queue a fetch of a version from `link`, unless it is here, coming, or buried."""
    async with context.db.transaction() as session:
        known = await session.scalar(select(Package.id).where(Package.uuid == uuid))
        buried = await session.scalar(select(Tombstone.uuid).where(Tombstone.uuid == uuid))
        if known is not None or buried is not None:
            return False
        await jobs.add_job(session, "fetch", fetch_key(uuid), {"uuid": uuid, "peer": link.iss})
    await jobs.dispatch(context, [fetch_key(uuid)])
    return True


async def follow_stage_change(context: Context, link: PeerLink, note: Notification) -> bool:
    """Take a peer's new stage for a package this server has. True if it changed here."""
    async with context.db.transaction() as session:
        package = (
            await session.execute(select(Package).where(Package.uuid == note.uuid))
        ).scalar_one_or_none()
        if package is None or package.stage == note.stage.value:
            return False
        previous, package.stage = package.stage, note.stage.value
        await record_event(
            session,
            "package.stage_changed",
            f"{package.filename} moved from {previous} to {note.stage.value} (from {link.name})",
            package_uuid=package.uuid,
        )
        return package.status == Status.PUBLIC.value


def check_manifest(manifest: PackageManifest, uuid: str) -> None:
    if manifest.uuid != uuid:
        raise jobs.JobFailed(f"the peer described another package ({manifest.uuid})")
    try:
        check_filename(manifest.filename)
    except InvalidInput as exc:
        raise jobs.JobFailed(f"the peer's filename is not acceptable: {exc.message}") from None
    indices = [chunk.index for chunk in manifest.chunks]
    if indices != list(range(chunk_count(manifest.file_size))):
        raise jobs.JobFailed("the peer's chunk list does not match the file size")


@dataclass(frozen=True)
class Target:
    """Where a fetched version goes: its own Downloading row, or over an older version."""

    package_id: int | None = None
    replaces_id: int | None = None
    # Not taken: this server's own version of the filename won; peers hear of it.
    keep: str | None = None


def version_key(created_ts: int, uuid: str) -> tuple[int, str]:
    """Of two versions of one filename, the greater key wins, on every server alike."""
    return (created_ts, uuid)


def from_timestamp(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None)


def incoming_wins(manifest: PackageManifest, other: Package) -> bool:
    """Whether a version a peer offers beats the other version of its filename here."""
    if manifest.replaces == other.uuid:
        return True
    if other.replaces == manifest.uuid:
        return False
    incoming = version_key(manifest.created_ts, manifest.uuid)
    return incoming > version_key(timestamp(other.created), other.uuid)


def loser_reason(manifest: PackageManifest, other: Package) -> str:
    """A version its successor replaced is `replaced`; a conflict's loser `superseded`."""
    if manifest.replaces == other.uuid or other.replaces == manifest.uuid:
        return "replaced"
    return "superseded"


async def resolve(
    session: AsyncSession, link: PeerLink, manifest: PackageManifest, other: Package
) -> bool:
    """Two versions of one filename met here. True if the incoming one wins.

    A version that replaced the other where it was uploaded wins quietly.
    Otherwise it is a conflict: the newer upload wins everywhere, ties broken
    by uuid, and the loser is set aside with a `superseded` tombstone and a
    `package.conflict` event. An older Public version stays served until the
    winner is in.
    """
    wins = incoming_wins(manifest, other)
    reason = loser_reason(manifest, other)
    if reason == "superseded":
        winner, loser = (manifest.uuid, other.uuid) if wins else (other.uuid, manifest.uuid)
        await record_event(
            session,
            "package.conflict",
            f"{manifest.filename}: two different uploads met (uuid {other.uuid} here, "
            f"uuid {manifest.uuid} from {link.name}); the newer upload, {winner}, wins "
            f"on every server and {loser} is set aside",
            package_uuid=loser,
        )
    if not wins:
        await service.bury(session, manifest.uuid, manifest.filename, reason)
    return wins


async def _start_row(context: Context, manifest: PackageManifest, link: PeerLink) -> Target | None:
    """Where this version goes; None when it is not taken (an older or set-aside version)."""
    async with context.db.transaction() as session:
        if await session.get(Tombstone, manifest.uuid) is not None:
            return None
        row = (
            await session.execute(select(Package).where(Package.uuid == manifest.uuid))
        ).scalar_one_or_none()
        if row is not None:
            if (row.sha256, row.file_size) != (manifest.sha256, manifest.file_size):
                raise jobs.RetryLater(
                    f"{link.name} describes {manifest.uuid} differently from the first source"
                )
            if row.status == Status.FAILED.value:
                row.status = Status.DOWNLOADING.value
                row.status_reason = None
            row.source_peer_id = link.id
            return Target(package_id=row.id)
        other = (
            await session.execute(select(Package).where(Package.filename == manifest.filename))
        ).scalar_one_or_none()
        if other is not None:
            if other.status == Status.PUBLISHING.value:
                raise jobs.RetryLater(f"{manifest.filename} is being published here")
            if not await resolve(session, link, manifest, other):
                return Target(keep=other.uuid) if other.status == Status.PUBLIC.value else None
            if other.status == Status.PUBLIC.value:
                return Target(replaces_id=other.id)
            # The loser was not served yet: drop it and fetch the winner in its place.
            await session.delete(other)
            await service.bury(session, other.uuid, other.filename, loser_reason(manifest, other))
            await session.flush()
        package = Package(
            uuid=manifest.uuid,
            filename=manifest.filename,
            file_size=manifest.file_size,
            sha1=manifest.sha1,
            sha256=manifest.sha256,
            stage=manifest.stage.value,
            status=Status.DOWNLOADING.value,
            created=from_timestamp(manifest.created_ts),
            origin_iss=manifest.origin_iss or link.iss,
            replaces=manifest.replaces,
            source_peer_id=link.id,
            chunks_done=0,
        )
        session.add(package)
        await session.flush()
        await _insert_manifest_chunks(session, package.id, manifest)
        await record_event(
            session,
            "package.downloading",
            f"{manifest.filename} ({size_hr(manifest.file_size)}) is coming from {link.name}",
            package_uuid=manifest.uuid,
        )
        return Target(package_id=package.id)


async def _insert_manifest_chunks(
    session: AsyncSession, package_id: int, manifest: PackageManifest
) -> None:
    rows = [
        {"package_id": package_id, "index": c.index, "sha1": c.sha1, "sha256": c.sha256}
        for c in manifest.chunks
    ]
    for start in range(0, len(rows), 1000):
        await session.execute(insert(Chunk), rows[start : start + 1000])


def verified_chunks(path: Path, manifest: PackageManifest) -> set[int]:
    """Chunks already in the staging file that match their SHA-256."""
    if not path.exists():
        return set()
    good = set()
    with path.open("rb") as handle:
        for chunk in manifest.chunks:
            handle.seek(chunk.index * CHUNK_SIZE)
            data = handle.read(CHUNK_SIZE)
            if hashlib.sha256(data).hexdigest() == chunk.sha256:
                good.add(chunk.index)
    return good


def prepare_staging(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


class Verifier:
    """Checks written chunks in index order and hashes the whole file as it goes.

    Fetch connections only write what they receive; they never wait for a
    hash. This task reads the chunks back (from the page cache), checks each
    one's SHA-256 and SHA1, feeds the whole file's SHA1 and SHA-256, and
    counts the chunk done. A chunk that fails its check is handed to
    `refetch`; after CHUNK_TRIES failures the fetch gives up. Chunks known
    good from the scan at start are only fed to the whole-file digests.
    """

    def __init__(
        self,
        path: Path,
        manifest: PackageManifest,
        progress: Progress,
        good: set[int],
        link_name: str,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.progress = progress
        self.chunks = len(manifest.chunks)
        self.good = set(good)
        self.written: set[int] = set()
        self.cursor = 0
        self.link_name = link_name
        self.failures: dict[int, int] = {}
        self.refetch: Callable[[int], None] = lambda index: None
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self._wake = asyncio.Event()
        self._wake.set()

    def chunk_written(self, index: int) -> None:
        self.written.add(index)
        if index == self.cursor:
            self._wake.set()

    def _ready(self, index: int) -> bool:
        return index in self.good or index in self.written

    async def run(self) -> tuple[str, str]:
        """Until every chunk is checked: the whole file's SHA1 and SHA-256."""
        fd = await asyncio.to_thread(os.open, self.path, os.O_RDONLY)
        try:
            while self.cursor < self.chunks:
                await self._wake.wait()
                self._wake.clear()
                while self._ready(self.cursor):
                    end = self.cursor
                    while self._ready(end) and end - self.cursor < HASH_BATCH_CHUNKS:
                        end += 1
                    await self._check(fd, self.cursor, end)
        finally:
            os.close(fd)
        return self._sha1.hexdigest(), self._sha256.hexdigest()

    async def _check(self, fd: int, start: int, end: int) -> None:
        """Chunks start..end-1; the cursor moves past the good ones, stops at a bad one."""
        trusted = {index for index in range(start, end) if index in self.good}
        passed, failed = await asyncio.to_thread(self._hash, fd, start, end, trusted)
        for index in range(start, start + passed):
            if index not in trusted:
                size = self.chunk_size(index)
                self.progress.chunks_done += 1
                self.progress.bytes_done += size
                self.progress.bytes_this_run += size
        self.cursor = start + passed
        if failed is not None:
            self._fail(*failed)

    def chunk_size(self, index: int) -> int:
        return min(CHUNK_SIZE, self.manifest.file_size - index * CHUNK_SIZE)

    def _hash(
        self, fd: int, start: int, end: int, trusted: set[int]
    ) -> tuple[int, tuple[int, str] | None]:
        """How many chunks from `start` passed, and the first that failed, with why."""
        for index in range(start, end):
            size = self.chunk_size(index)
            data = os.pread(fd, size, index * CHUNK_SIZE)
            if index not in trusted:
                digests = self.manifest.chunks[index]
                try:
                    check_chunk(data, size, digests.sha256, digests.sha1)
                except BadChunk as exc:
                    return index - start, (index, str(exc))
            self._sha1.update(data)
            self._sha256.update(data)
        return end - start, None

    def _fail(self, index: int, reason: str) -> None:
        log.warning(
            "chunk %d of %s from %s is bad: %s",
            index,
            self.manifest.filename,
            self.link_name,
            reason,
        )
        self.written.discard(index)
        tries = self.failures[index] = self.failures.get(index, 0) + 1
        if tries >= CHUNK_TRIES:
            raise jobs.RetryLater(
                f"chunk {index} from {self.link_name} failed verification "
                f"{CHUNK_TRIES} times ({reason})"
            )
        self.refetch(index)


def check_chunk(data: bytes | memoryview, expected_size: int, sha256: str, sha1: str) -> None:
    if len(data) != expected_size:
        raise BadChunk(f"{len(data)} bytes instead of {expected_size}")
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BadChunk("SHA-256 mismatch")
    if hashlib.sha1(data, usedforsecurity=False).hexdigest() != sha1:
        raise BadChunk("SHA1 mismatch")


def write_at(fd: int, data: memoryview, offset: int) -> None:
    """Write received bytes in place; the verifier checks each chunk once it is whole."""
    while data:
        written = os.pwrite(fd, data, offset)
        data = data[written:]
        offset += written


async def _save_progress(context: Context, package_id: int, chunks_done: int) -> None:
    async with context.db.transaction() as session:
        await session.execute(
            update(Package).where(Package.id == package_id).values(chunks_done=chunks_done)
        )


def runs(indices: list[int], longest: int) -> list[tuple[int, int]]:
    """Consecutive indices as (first, count) runs of at most `longest` chunks."""
    found: list[tuple[int, int]] = []
    for index in sorted(indices):
        if found and found[-1][0] + found[-1][1] == index and found[-1][1] < longest:
            found[-1] = (found[-1][0], found[-1][1] + 1)
        else:
            found.append((index, 1))
    return found


class ChunkFetcher:
    """Fetches runs of chunks from one peer and writes them in place as they arrive.

    Each request asks for up to RUN_CHUNKS consecutive chunks. Writing
    comes before any check: what arrived is in the staging file even if this
    process dies the next moment, and the scan at the next start keeps every
    whole chunk that is good.
    """

    def __init__(
        self,
        context: Context,
        link: PeerLink,
        manifest: PackageManifest,
        fd: int,
        verifier: Verifier,
    ) -> None:
        self.context = context
        self.link = link
        self.manifest = manifest
        self.fd = fd
        self.verifier = verifier

    async def fetch_run(self, first: int, count: int) -> None:
        """Fetch one run, writing it WRITE_SIZE bytes at a time as it arrives."""
        start = first * CHUNK_SIZE
        end = min(self.manifest.file_size, (first + count) * CHUNK_SIZE)
        path = f"/packages/{self.manifest.uuid}/chunks?start={first}&count={count}"
        view = memoryview(bytearray(WRITE_SIZE))
        offset, filled, complete = start, 0, first  # offset: where view[0] goes
        async with open_stream(
            self.context.http,
            own_iss=self.context.iss,
            link=self.link,
            path=path,
            limit=end - start,
            stall_seconds=self.context.settings.fetch_stall_seconds,
        ) as body:
            async for received in body:
                part, taken = memoryview(received), 0
                while taken < len(part):
                    step = min(len(part) - taken, WRITE_SIZE - filled)
                    view[filled : filled + step] = part[taken : taken + step]
                    filled += step
                    taken += step
                    if filled == WRITE_SIZE or offset + filled == end:
                        await asyncio.to_thread(write_at, self.fd, view[:filled], offset)
                        offset, filled = offset + filled, 0
                        while complete < first + count and offset >= min(
                            end, (complete + 1) * CHUNK_SIZE
                        ):
                            self.verifier.chunk_written(complete)
                            complete += 1
        if offset < end:
            raise PeerUnreachable(
                f"{self.link.name} ended chunks {first}-{first + count - 1} early, at {complete}"
            )


async def fetch_chunks(
    context: Context,
    link: PeerLink,
    manifest: PackageManifest,
    path: Path,
    missing: list[int],
    verifier: Verifier,
    package_id: int | None,
    job_key: str,
) -> tuple[str, str]:
    """Fetch the missing chunks and check them all: the whole file's SHA1 and SHA-256."""
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for run in runs(missing, RUN_CHUNKS):
        queue.put_nowait(run)
    verifier.refetch = lambda index: queue.put_nowait((index, 1))
    in_flight = min(context.settings.fetch_parallel_chunks, max(1, queue.qsize()))
    fd = os.open(path, os.O_WRONLY)
    fetcher = ChunkFetcher(context, link, manifest, fd, verifier)

    async def connection() -> None:
        # Ends only by an error, or cancelled once every chunk is checked.
        while True:
            first, count = await queue.get()
            try:
                await fetcher.fetch_run(first, count)
            except ChunkTooLarge as exc:
                raise jobs.RetryLater(f"{link.name}: {exc}") from None

    async def saver() -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            if package_id is not None:
                await _save_progress(context, package_id, verifier.progress.chunks_done)
            await jobs.touch(context, job_key)

    tasks = [asyncio.create_task(connection()) for _ in range(in_flight)]
    tasks.append(asyncio.create_task(saver()))
    checking = asyncio.create_task(verifier.run())
    try:
        done, _ = await asyncio.wait([checking, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done - {checking}:
            task.result()  # a connection or the saver failed: raise its error
        digests = checking.result()
        await asyncio.to_thread(os.fsync, fd)
        return digests
    finally:
        for task in [checking, *tasks]:
            task.cancel()
        await asyncio.gather(checking, *tasks, return_exceptions=True)
        os.close(fd)


async def _claim(
    session: AsyncSession, link: PeerLink, manifest: PackageManifest, target: Target
) -> Package | None:
    """The row to publish into, marked Publishing; None if things changed meanwhile."""
    if target.package_id is not None:
        row = await session.get(Package, target.package_id)
        if row is None or row.uuid != manifest.uuid or row.status != Status.DOWNLOADING.value:
            return None
    else:
        row = await session.get(Package, target.replaces_id)
        if row is None or row.filename != manifest.filename or row.status != Status.PUBLIC.value:
            return None
        if row.uuid != manifest.uuid:
            if not incoming_wins(manifest, row):
                # A newer version got in meanwhile.
                await service.bury(session, manifest.uuid, manifest.filename, "superseded")
                return None
            await service.bury(session, row.uuid, row.filename, loser_reason(manifest, row))
            await session.execute(delete(Chunk).where(Chunk.package_id == row.id))
            row.uuid = manifest.uuid
            row.file_size = manifest.file_size
            row.sha1 = manifest.sha1
            row.sha256 = manifest.sha256
            row.stage = manifest.stage.value
            row.created = from_timestamp(manifest.created_ts)
            row.origin_iss = manifest.origin_iss or link.iss
            row.replaces = manifest.replaces
            row.source_peer_id = link.id
            await session.flush()
            await _insert_manifest_chunks(session, row.id, manifest)
    row.status = Status.PUBLISHING.value
    return row


async def _publish(
    context: Context, link: PeerLink, manifest: PackageManifest, target: Target, path: Path
) -> bool:
    """Move the verified file into the share dir. False if the version is no longer wanted."""
    async with context.db.transaction() as session:
        row = await _claim(session, link, manifest, target)
        package_id = row.id if row is not None else None
    if package_id is None:
        await asyncio.to_thread(path.unlink, True)
        return False
    await context.files.publish(path, manifest.filename)
    context.chunk_sources.clear()
    async with context.db.transaction() as session:
        package = await session.get(Package, package_id)
        assert package is not None
        package.status = Status.PUBLIC.value
        package.chunks_done = chunk_count(package.file_size)
        await record_event(
            session,
            "package.available",
            f"{manifest.filename} is available here",
            package_uuid=package.uuid,
        )
    return True


async def fetch(context: Context, uuid: str, link: PeerLink, job_key: str) -> None:
    client = PeerClient(context.http, context.iss, link)
    try:
        response = await client.call("GET", f"/packages/{uuid}")
        manifest = PackageManifest.model_validate(response.json())
    except ValidationError:
        raise jobs.RetryLater(f"{link.name} sent a package description ODS cannot read") from None
    except OdsError as exc:
        await peers.record_failure(context, link.id, exc)
        raise jobs.RetryLater(exc.message) from None
    check_manifest(manifest, uuid)
    me = await get_identity(context.db, context.cipher)
    if not me.stage.accepts(Stage(manifest.stage)):
        return
    target = await _start_row(context, manifest, link)
    if target is None:
        return
    if target.keep is not None:
        await replication.announce(context, target.keep)
        return
    path = context.files.download(uuid)
    good = await asyncio.to_thread(verified_chunks, path, manifest)
    if not path.exists():
        await asyncio.to_thread(prepare_staging, path, manifest.file_size)
    missing = [c.index for c in manifest.chunks if c.index not in good]
    progress = Progress(
        chunks_total=len(manifest.chunks),
        chunks_done=len(good),
        bytes_done=sum(min(CHUNK_SIZE, manifest.file_size - i * CHUNK_SIZE) for i in good),
        source=link.name,
    )
    DOWNLOADS[uuid] = progress
    verifier = Verifier(path, manifest, progress, good, link.name)
    started = time.monotonic()
    try:
        sha1, sha256 = await fetch_chunks(
            context, link, manifest, path, missing, verifier, target.package_id, job_key
        )
    except OdsError as exc:
        await peers.record_failure(context, link.id, exc)
        raise jobs.RetryLater(exc.message) from None
    finally:
        DOWNLOADS.pop(uuid, None)
    if sha256 != manifest.sha256 or sha1 != manifest.sha1:
        path.unlink(missing_ok=True)
        raise jobs.RetryLater("the whole file does not match its SHA-256 and SHA1; fetching again")
    if not await _publish(context, link, manifest, target, path):
        return
    elapsed = time.monotonic() - started
    log.info(
        "fetched %s (%s) from %s in %.1f s, %s/s",
        manifest.filename,
        size_hr(progress.bytes_this_run),
        link.name,
        elapsed,
        size_hr(int(progress.bytes_this_run / max(elapsed, 0.001))),
    )
    await peers.record_contact(context, link.id, None)
    await replication.announce(context, uuid, skip_iss=link.iss)


async def mark_failed(context: Context, payload: dict[str, Any], reason: str) -> None:
    async with context.db.transaction() as session:
        package = (
            await session.execute(select(Package).where(Package.uuid == payload["uuid"]))
        ).scalar_one_or_none()
        if package is None or package.status != Status.DOWNLOADING.value:
            return
        package.status = Status.FAILED.value
        package.status_reason = reason
        await record_event(
            session,
            "package.failed",
            f"{package.filename} could not be fetched: {reason}",
            package_uuid=package.uuid,
        )


@jobs.job("fetch", max_attempts=8, on_failure=mark_failed)
async def fetch_job(context: Context, payload: dict[str, Any]) -> None:
    uuid = payload["uuid"]
    async with context.db.session() as session:
        status = await session.scalar(select(Package.status).where(Package.uuid == uuid))
        buried = await session.get(Tombstone, uuid) is not None
    if status == Status.PUBLIC.value or buried:
        return
    # The peer that offered it first, then any other peer that has it.
    sources = await peers.links(context)
    sources.sort(key=lambda link: link.iss != payload["peer"])
    if not sources:
        raise jobs.JobFailed("no registered peer is left to fetch it from")
    reasons = []
    for link in sources:
        try:
            await fetch(context, uuid, link, fetch_key(uuid))
            return
        except jobs.RetryLater as exc:
            reasons.append(f"{link.name}: {exc}")
    raise jobs.RetryLater("; ".join(reasons))
