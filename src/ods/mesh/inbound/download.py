"""The `fetch` job: download a package from a peer, verify it, publish it, pass the news on.

A fetch reads the package's manifest from the peer that announced it (or
from any other peer that has it) and decides where the version goes
(`versions`). It then asks for runs of 1 MiB chunks (`chunks`) and receives
them in worker threads (`transfer`): each chunk is written in place into one
staging file and checked against its SHA-256, and the whole file is hashed
as it goes; a bad chunk is fetched again. After a crash or restart the staging
file is the state: the chunks in it that match their SHA-256 are kept, only
the others are fetched. When every chunk is checked, the whole file's SHA-256
is compared, and it is published the way uploads are (Publishing, rename,
Public), then announced to this server's own peers. SHA-256 is the only digest
computed here; the SHA1s and the SHA-512 are the origin's, from its signed
statement (`transfer`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core import platform
from ods.core.disk import is_disk_full
from ods.core.errors import OdsError
from ods.core.humanize import size_hr
from ods.core.models import Job, Package, Tombstone
from ods.core.statuses import Status
from ods.events.catalogue import PackageAvailable, PackageFailed, package_facts
from ods.events.log import record
from ods.jobs import runner as jobs
from ods.jobs.kinds import Fetch
from ods.mesh import outbound
from ods.mesh.inbound.checks import (
    Lacking,
    Refused,
    Vouched,
    check_manifest,
    chunk_count,
    manifest_limit,
    record_refusal,
    vouch,
)
from ods.mesh.inbound.chunks import fetch_chunks, in_thread
from ods.mesh.inbound.space import wait_for_space
from ods.mesh.inbound.transfer import Receiver, Staged, StagingFile, scan_staging
from ods.mesh.inbound.versions import KeepOurs, NewRow, OverPublic, claim_for_publishing, place
from ods.mesh.peers import links
from ods.mesh.protocol.client import AnswerRejected, PeerClient, PeerLacks, PeerLink
from ods.mesh.protocol.wire import PackageManifest
from ods.packages.digest import CHUNK_SIZE
from ods.packages.progress import DownloadProgress, Downloads
from ods.packages.publish import make_public
from ods.server.identity import get_identity

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)


def prepare_staging(path: Path, size: int) -> None:
    fd = platform.open_file(path, os.O_WRONLY | os.O_CREAT)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


async def publish(
    context: Context,
    link: PeerLink,
    manifest: PackageManifest,
    vouched: Vouched,
    target: NewRow | OverPublic,
    path: Path,
) -> bool:
    """Move the verified file into the share dir. False if the version is no longer wanted."""
    async with context.db.transaction() as session:
        row = await claim_for_publishing(session, link, manifest, vouched, target)
        package_id = row.id if row is not None else None
    if package_id is None:
        await asyncio.to_thread(path.unlink, True)
        return False

    async def available(session: AsyncSession, package: Package) -> None:
        package.chunks_done = chunk_count(package.file_size)
        await record(
            session, PackageAvailable(**package_facts(package), peer=link.name, peer_iss=link.iss)
        )

    await make_public(
        context,
        package_id,
        path,
        manifest.filename,
        manifest.sha1,
        manifest.created_ts,
        record=available,
    )
    return True


async def read_manifest(context: Context, link: PeerLink, uuid: str) -> PackageManifest:
    """The peer's description of a package: size, digests, the digests of every chunk.

    Refused when the peer does not have it or sends one that cannot be taken;
    RetryLater when it cannot be reached, or the answer was not its own.
    """
    client = PeerClient(context.http, context.iss, link)
    max_size = context.settings.max_upload_size
    try:
        answer = await client.call("GET", f"/packages/{uuid}", limit=manifest_limit(max_size))
    except PeerLacks:
        raise Lacking("it does not have it") from None
    except OdsError as exc:
        await links.record_failure(context, link.id, exc)
        raise jobs.RetryLater(exc.message) from None
    try:
        manifest = answer.parse(PackageManifest, link.name, "a package description")
    except AnswerRejected as exc:
        raise Refused(exc.message) from None
    return check_manifest(manifest, uuid, max_size)


async def receive(
    context: Context,
    link: PeerLink,
    manifest: PackageManifest,
    target: NewRow | OverPublic,
    job_key: str,
) -> DownloadProgress:
    """Fetch and check every chunk not already good in the staging file; the file's digests
    must then match. Returns the download's progress (for the log).

    The chunks it lacks must fit on the disk beside ODS_MIN_FREE_SPACE; if they do not,
    or the disk fills up on the way, it waits for space and goes on (`space`).
    """
    path = context.files.download(manifest.uuid)
    progress = DownloadProgress(
        chunks_total=len(manifest.chunks), chunks_done=0, bytes_done=0, source=link.name
    )
    row_id = target.package_id if isinstance(target, NewRow) else None
    downloads = context.part(Downloads)
    downloads.start(manifest.uuid, progress)
    disk_full = False
    try:
        while True:
            staged = await asyncio.to_thread(scan_staging, path, manifest)
            missing = [c.index for c in manifest.chunks if c.index not in staged.good]
            progress.chunks_done = len(staged.good)
            progress.bytes_done = sum(chunk_bytes(manifest, i) for i in staged.good)
            lacking = sum(chunk_bytes(manifest, i) for i in missing)
            await wait_for_space(context, manifest, progress, lacking, job_key, disk_full)
            disk_full = False
            try:
                sha256 = await receive_missing(
                    context, link, manifest, progress, staged, missing, row_id, job_key
                )
                break
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                # The disk filled up on the way: the chunks written and checked stay.
                disk_full = True
    except OdsError as exc:
        await links.record_failure(context, link.id, exc)
        raise jobs.RetryLater(exc.message) from None
    finally:
        downloads.end(manifest.uuid)
    if sha256 != manifest.sha256:
        path.unlink(missing_ok=True)
        raise jobs.RetryLater("the whole file does not match its SHA-256; fetching again")
    return progress


def chunk_bytes(manifest: PackageManifest, index: int) -> int:
    return min(CHUNK_SIZE, manifest.file_size - index * CHUNK_SIZE)


async def receive_missing(
    context: Context,
    link: PeerLink,
    manifest: PackageManifest,
    progress: DownloadProgress,
    staged: Staged,
    missing: list[int],
    row_id: int | None,
    job_key: str,
) -> str:
    """Fetch the missing chunks into the staging file; the whole file's SHA-256."""
    path = context.files.download(manifest.uuid)
    if not path.exists():
        await asyncio.to_thread(prepare_staging, path, manifest.file_size)
    staging = await asyncio.to_thread(StagingFile, path)
    receiver = Receiver(staging, manifest, progress, staged)
    try:
        await fetch_chunks(context, link, manifest, receiver, missing, row_id, job_key)
        sha256 = await in_thread(context, receiver.close, receiver.finish)
        await asyncio.to_thread(staging.sync)
    finally:
        receiver.close()
        staging.close()
    return sha256


async def vouched_manifest(
    context: Context, link: PeerLink, uuid: str
) -> tuple[PackageManifest, Vouched]:
    """The manifest, and its origin's word for it; a refusal is recorded as an event."""
    manifest: PackageManifest | None = None
    try:
        manifest = await read_manifest(context, link, uuid)
        return manifest, await vouch(context, link, manifest)
    except Lacking:
        raise
    except Refused as exc:
        filename = manifest.filename if manifest is not None else exc.filename
        await record_refusal(context, link, "package", uuid, filename, str(exc))
        raise


async def fetch_from(context: Context, uuid: str, link: PeerLink, job_key: str) -> None:
    """Fetch one version from one peer, publish it, and tell this server's own peers."""
    manifest, vouched = await vouched_manifest(context, link, uuid)
    me = await get_identity(context.db, context.cipher)
    if not me.stage.accepts(vouched.stage):
        return
    target = await place(context, manifest, vouched, link)
    if target is None:
        return
    if isinstance(target, KeepOurs):
        await outbound.announce(context, target.uuid)
        return
    started = time.monotonic()
    progress = await receive(context, link, manifest, target, job_key)
    path = context.files.download(uuid)
    if not await publish(context, link, manifest, vouched, target, path):
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
    await links.record_contact(context, link.id, None)
    await outbound.announce(context, uuid, skip_iss=link.iss)


async def staging_in_use(session: AsyncSession, uuid: str) -> bool:
    """Whether a fetch may still write or publish the version's staging file.

    It may while its Fetch job is pending or running (a version fetched over a
    Public one has no row of its own until it is published), and while its
    row is Downloading or Publishing. The job's row stays locked until the
    caller's transaction ends, so no fetch of the version starts in any
    process while the caller removes the file.
    """
    job_status = await session.scalar(
        select(Job.status).where(Job.key == Fetch(uuid=uuid, peer="").key()).with_for_update()
    )
    if job_status in (jobs.JobStatus.PENDING, jobs.JobStatus.RUNNING):
        return True
    status = await session.scalar(select(Package.status).where(Package.uuid == uuid))
    return status in (Status.DOWNLOADING.value, Status.PUBLISHING.value)


async def remove_staging(context: Context, session: AsyncSession, uuid: str) -> bool:
    """Remove the version's staging file unless a fetch may still use it. True if removed."""
    if await staging_in_use(session, uuid):
        return False
    # Inside the transaction, on purpose: the lock taken above keeps any fetch
    # of this version from starting until the file is gone.
    path = context.files.download(uuid)
    await asyncio.to_thread(path.unlink, True)
    return True


async def mark_failed(context: Context, job: Fetch, reason: str) -> None:
    """The fetch gave up: its package is Failed with the reason, and its staging file goes."""
    async with context.db.transaction() as session:
        package = (
            await session.execute(select(Package).where(Package.uuid == job.uuid))
        ).scalar_one_or_none()
        if package is not None and package.status == Status.DOWNLOADING.value:
            package.status = Status.FAILED.value
            package.status_reason = reason
            await record(session, PackageFailed(**package_facts(package), reason=reason))
        await remove_staging(context, session, job.uuid)


async def remove_abandoned_staging(context: Context) -> None:
    """At start: remove the staging files no fetch will resume from.

    That is every download staging file but those of versions still
    Downloading or Publishing, or with a fetch pending or running: those
    resume (another process sharing the data dir may be running them now).
    """
    for uuid in context.files.downloads():
        async with context.db.transaction() as session:
            if await remove_staging(context, session, uuid):
                log.info("removed the staging file of %s: no fetch of it is left", uuid)


async def fetch_job(context: Context, job: Fetch) -> None:
    uuid = job.uuid
    async with context.db.session() as session:
        status = await session.scalar(select(Package.status).where(Package.uuid == uuid))
        buried = await session.get(Tombstone, uuid) is not None
    if status == Status.PUBLIC.value or buried:
        return
    # The peer that offered it first, then any other peer that has it.
    sources = await links.links(context)
    sources.sort(key=lambda link: link.iss != job.peer)
    if not sources:
        raise jobs.JobFailed("no registered peer is left to fetch it from")
    reasons = []
    retry = False
    for link in sources:
        try:
            await fetch_from(context, uuid, link, job.key())
            return
        except jobs.RetryLater as exc:
            retry = True
            reasons.append(f"{link.name}: {exc}")
        except Refused as exc:
            reasons.append(f"{link.name}: {exc}")
    if retry:
        raise jobs.RetryLater("; ".join(reasons))
    # Every source refused, or lacks it: trying again will not change that.
    raise jobs.JobFailed("; ".join(reasons))
