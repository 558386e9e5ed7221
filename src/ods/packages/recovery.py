"""Taking over what a stopped process left: its publishes and its uploads in flight.

Run when a process starts and by the scheduler while it runs. Only work
whose owner is gone (`ods.jobs.owners`) is touched, so starting a server or
a worker beside running ones never disturbs their uploads and publishes.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.humanize import timestamp
from ods.core.models import Job, Package, utcnow
from ods.core.statuses import Status
from ods.core.storage import OwnedFile
from ods.jobs import runner as jobs
from ods.jobs.kinds import AnnouncePackage, Fetch
from ods.jobs.owners import LiveOwners, live_owners
from ods.jobs.status import JobStatus

if TYPE_CHECKING:
    from pathlib import Path

    from ods.core.context import Context

log = logging.getLogger(__name__)


def idle_seconds(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def abandoned(live: LiveOwners, staged: OwnedFile) -> bool:
    return live.gone(staged.owner, idle_seconds(staged.path))


async def fetch_is_live(session: AsyncSession, live: LiveOwners, uuid: str) -> bool:
    """Whether a live process runs the fetch that owns the version's download staging file."""
    job = (
        await session.execute(
            select(Job.status, Job.owner, Job.updated).where(
                Job.key == Fetch(uuid=uuid, peer="").key()
            )
        )
    ).one_or_none()
    if job is None or job.status != JobStatus.RUNNING:
        return False
    return not live.gone(job.owner, (utcnow() - job.updated).total_seconds())


async def finish_publishing(
    context: Context, session: AsyncSession, live: LiveOwners, package: Package
) -> set[str]:
    """Finish an abandoned publish of `package`; leave a live one alone.
    Returns the names of the staging files that stay."""
    files = context.files
    uploads = files.uploads_of(package.uuid)
    if any(not abandoned(live, staged) for staged in uploads):
        return {staged.path.name for staged in uploads}
    download = files.download(package.uuid)
    if download.exists() and await fetch_is_live(session, live, package.uuid):
        return {download.name}
    staged = next((u.path for u in uploads if u.path.exists()), None)
    if staged is None and download.exists():
        staged = download
    if staged is not None:
        await files.publish(staged, package.filename, package.sha1, timestamp(package.created))
    if files.published(package.filename).exists():
        package.status = Status.PUBLIC.value
        await jobs.add_job(session, AnnouncePackage(uuid=package.uuid))
        log.info("finished publishing %s, which a stopped process left", package.filename)
    else:
        package.status = Status.FAILED.value
        package.status_reason = "The file was lost while it was being published."
    return set()


async def recover(context: Context) -> None:
    """Finish the publishes a stopped process left; remove the uploads it left unfinished.

    A version published here is announced to the peers by a job recorded with
    it; the queue takes that job up when it resumes pending work.
    """
    keep: set[str] = set()
    async with context.db.transaction() as session:
        live = await live_owners(context, session)
        publishing = (
            await session.execute(select(Package).where(Package.status == Status.PUBLISHING.value))
        ).scalars()
        for package in publishing:
            keep |= await finish_publishing(context, session, live, package)
    for leftover in context.files.leftover_uploads():
        if leftover.path.name in keep or not abandoned(live, leftover):
            continue
        log.info(
            "removing %s: %s stopped before it was done",
            leftover.path.name,
            leftover.owner or "the process that wrote it",
        )
        leftover.path.unlink(missing_ok=True)
