"""The receiving side of replication: take a notification, fetch, verify, publish, relay.

A fetch asks for runs of 1 MiB chunks (ODS_FETCH_PARALLEL_CHUNKS requests
in flight, each on its own connection) and receives them in worker threads
(`ods.mesh.inbound.transfer`): each chunk is written in place into one staging file
and checked against its SHA-256 and SHA1, and the whole file is hashed as it
goes; a bad chunk is fetched again. After a crash or restart the staging
file is the state: the chunks in it that match their digests are kept, only
the others are fetched. When every chunk is checked, the whole file's
SHA-256 and SHA1 are compared, and it is published the way uploads are
(Publishing, rename, Public), then announced to this server's own peers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.errors import InvalidInput, OdsError
from ods.core.humanize import size_hr, timestamp
from ods.core.models import Chunk, Package, Tombstone
from ods.core.stages import Stage
from ods.events.log import record_event
from ods.jobs import runner as jobs
from ods.mesh import peers, replication
from ods.mesh.inbound.transfer import BadChunk, Receiver, StagingFile, scan_staging
from ods.mesh.protocol.client import ChunkTooLarge, PeerClient, PeerLink, signed_get
from ods.mesh.protocol.wire import Notification, PackageManifest
from ods.packages import service
from ods.packages.digest import CHUNK_SIZE
from ods.packages.naming import check_filename
from ods.packages.progress import DOWNLOADS, Progress
from ods.packages.schemas import Status
from ods.server.identity import get_identity

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)

T = TypeVar("T")

CHUNK_TRIES = 3
PROGRESS_INTERVAL = 1.0
RUN_CHUNKS = 32  # chunks asked for in one request


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


def prepare_staging(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


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


async def in_thread(context: Context, stop: Callable[[], None], call: Callable[[], T]) -> T:
    """Run `call` in a transfer thread; if cancelled, `stop` it and wait for it to end."""
    future = asyncio.get_running_loop().run_in_executor(context.transfer_threads, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        stop()
        await asyncio.wait([future])
        raise


async def fetch_chunks(
    context: Context,
    link: PeerLink,
    manifest: PackageManifest,
    receiver: Receiver,
    missing: list[int],
    package_id: int | None,
    job_key: str,
) -> None:
    """Fetch the missing chunks until every chunk is in and checked."""
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for run in runs(missing, RUN_CHUNKS):
        queue.put_nowait(run)
    failures: dict[int, int] = {}
    in_flight = min(context.settings.fetch_parallel_chunks, max(1, queue.qsize()))

    def refetch(bad: BadChunk) -> None:
        log.warning(
            "chunk %d of %s from %s is bad: %s",
            bad.index,
            manifest.filename,
            link.name,
            bad.reason,
        )
        tries = failures[bad.index] = failures.get(bad.index, 0) + 1
        if tries >= CHUNK_TRIES:
            raise jobs.RetryLater(
                f"chunk {bad.index} from {link.name} failed verification "
                f"{CHUNK_TRIES} times ({bad.reason})"
            )
        queue.put_nowait((bad.index, 1))

    async def connection() -> None:
        # Returns once every chunk is checked; or fails; or is cancelled.
        peer = context.connect(link)

        def stop() -> None:
            receiver.aborted.set()
            peer.abort()

        try:
            while not receiver.complete:
                first, count = await queue.get()
                path = f"/packages/{manifest.uuid}/chunks?start={first}&count={count}"
                url, headers = signed_get(context.iss, link, path)
                receive = partial(receiver.receive, peer, url, headers, first, count)
                try:
                    bad = await in_thread(context, stop, receive)
                except ChunkTooLarge as exc:
                    raise jobs.RetryLater(f"{link.name}: {exc}") from None
                for chunk in bad:
                    refetch(chunk)
        finally:
            peer.close()

    async def saver() -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            if package_id is not None:
                await _save_progress(context, package_id, receiver.progress.chunks_done)
            await jobs.touch(context, job_key)

    if receiver.complete:
        return
    tasks = [asyncio.create_task(connection()) for _ in range(in_flight)]
    tasks.append(asyncio.create_task(saver()))
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # a connection or the saver failed: raise its error
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


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
    staged = await asyncio.to_thread(scan_staging, path, manifest)
    good = staged.good
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
    started = time.monotonic()
    try:
        staging = await asyncio.to_thread(StagingFile, path)
        receiver = Receiver(staging, manifest, progress, staged)
        try:
            await fetch_chunks(
                context, link, manifest, receiver, missing, target.package_id, job_key
            )
            digests = await in_thread(context, receiver.close, receiver.finish)
            await asyncio.to_thread(staging.sync)
        finally:
            receiver.close()
            staging.close()
    except OdsError as exc:
        await peers.record_failure(context, link.id, exc)
        raise jobs.RetryLater(exc.message) from None
    finally:
        DOWNLOADS.pop(uuid, None)
    if digests != (manifest.sha1, manifest.sha256):
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
