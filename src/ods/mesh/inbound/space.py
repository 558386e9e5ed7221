"""A fetch that has no room on the disk waits, visibly, and goes on when space is freed.

Before a fetch writes, the chunks it still lacks must fit beside
ODS_MIN_FREE_SPACE; when the disk fills up mid-fetch anyway (another program
wrote to it), the write fails with ENOSPC. Either way the fetch keeps the
chunks it has checked, its package shows `status_reason` "waiting for disk
space: …", a `package.waiting_for_space` event is recorded, and it looks at
the disk again every few seconds, renewing its job's lease, until the chunks
fit. Then it goes on from where it was, without a restart.

Nothing here may depend on a database write succeeding: with SQLite in the
data dir, a full disk also refuses the database's writes. What cannot be
recorded is shown from this process's memory (`DownloadProgress.waiting`)
and recorded once the database takes writes again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ods.core.disk import DiskSpace, disk_space
from ods.core.errors import one_line
from ods.core.models import Package
from ods.core.statuses import Status
from ods.events.catalogue import PackageWaitingForSpace
from ods.events.log import record
from ods.jobs import runner as jobs
from ods.mesh.protocol.wire import PackageManifest
from ods.packages.progress import DownloadProgress

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)

SPACE_CHECK_SECONDS = 2.0
WAITING = "waiting for disk space"


async def free_space(context: Context) -> DiskSpace:
    return await asyncio.to_thread(disk_space, context.settings)


async def wait_for_space(
    context: Context,
    manifest: PackageManifest,
    progress: DownloadProgress,
    needed: int,
    job_key: str,
    disk_full: bool = False,
) -> None:
    """Return once `needed` bytes fit beside the reserve; until then the fetch waits.
    After a write failed for want of space (`disk_full`) it waits at least once."""
    space = await free_space(context)
    if space.fits(needed) and not disk_full:
        return
    reason = f"{WAITING}: {space.shortfall(needed)}"
    log.warning("the fetch of %s waits: %s", manifest.filename, space.shortfall(needed))
    progress.waiting = reason
    recorded = await _record_waiting(context, manifest, reason, needed, space, warn=True)
    while True:
        await asyncio.sleep(SPACE_CHECK_SECONDS)
        space = await free_space(context)
        if not recorded:
            recorded = await _record_waiting(context, manifest, reason, needed, space, warn=False)
        await _renew_lease(context, job_key)
        if space.fits(needed):
            break
    progress.waiting = None
    log.info("the fetch of %s goes on: the disk has room again", manifest.filename)
    await _clear_waiting(context, manifest.uuid)


async def _record_waiting(
    context: Context,
    manifest: PackageManifest,
    reason: str,
    needed: int,
    space: DiskSpace,
    *,
    warn: bool,
) -> bool:
    """The package's reason and the event; False if the database refused the write
    (logged at the first try only: it is tried again every few seconds)."""
    try:
        async with context.db.transaction() as session:
            package = (
                await session.execute(select(Package).where(Package.uuid == manifest.uuid))
            ).scalar_one_or_none()
            facts = {
                "uuid": manifest.uuid,
                "filename": manifest.filename,
                "stage": manifest.stage,
                "status": Status.DOWNLOADING,
                "file_size": manifest.file_size,
                "sha1": manifest.sha1,
                "sha256": manifest.sha256,
            }
            if package is not None and package.status == Status.DOWNLOADING.value:
                package.status_reason = reason
                facts["stage"] = package.stage
            event = PackageWaitingForSpace.model_validate(
                facts
                | {"needed_bytes": needed, "free_bytes": space.free, "reserve_bytes": space.reserve}
            )
            await record(session, event)
    except (SQLAlchemyError, OSError) as exc:
        log.log(
            logging.WARNING if warn else logging.DEBUG,
            "could not record that %s waits for disk space (tried again until it is): %s",
            manifest.filename,
            one_line(exc),
        )
        return False
    return True


async def _clear_waiting(context: Context, uuid: str) -> None:
    try:
        async with context.db.transaction() as session:
            package = (
                await session.execute(select(Package).where(Package.uuid == uuid))
            ).scalar_one_or_none()
            if package is not None and (package.status_reason or "").startswith(WAITING):
                package.status_reason = None
    except (SQLAlchemyError, OSError) as exc:
        log.warning("could not clear the waiting state of %s: %s", uuid, one_line(exc))


async def _renew_lease(context: Context, job_key: str) -> None:
    try:
        await jobs.touch(context, job_key)
    except (SQLAlchemyError, OSError) as exc:
        log.debug("could not renew the lease of %s: %s", job_key, one_line(exc))
