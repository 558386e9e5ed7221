"""Retrying a Failed package: at once when an admin asks, or by reconciliation with back-off.

A fetch that gave up leaves its package Failed (and removes its staging
file). Failed is not for ever: `retry_package` fetches it again now, and
reconciliation fetches a Failed package a peer still offers once its back-off
has passed: one reconciliation interval after the first failure, then 2, 4,
8 … intervals, at most a day. The back-off counts the `package.failed`
events of the version, so it needs no state of its own.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.errors import Conflict
from ods.core.models import Event, Package, Peer, utcnow
from ods.core.statuses import Status
from ods.core.uuids import public_uuid
from ods.events.catalogue import PackageFailed
from ods.jobs import runner as jobs
from ods.jobs.kinds import Fetch
from ods.packages.progress import Downloads
from ods.packages.schemas import PackageOut
from ods.packages.views import find, package_dict

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = dt.timedelta(days=1)


async def start_fetch(session: AsyncSession, package: Package, peer_iss: str | None) -> str:
    """Make a Failed package Downloading again and record its fetch; returns the job key."""
    if peer_iss is None and package.source_peer_id is not None:
        peer_iss = await session.scalar(select(Peer.iss).where(Peer.id == package.source_peer_id))
    package.status = Status.DOWNLOADING.value
    package.status_reason = None
    package.chunks_done = 0
    return await jobs.add_job(session, Fetch(uuid=package.uuid, peer=peer_iss or ""))


async def retry_package(context: Context, ref: str, actor: str) -> PackageOut:
    """Fetch a Failed package again now, from the peer it came from or any other."""
    async with context.db.transaction() as session:
        package = await find(session, ref, lock=True)
        if package.status != Status.FAILED.value:
            raise Conflict(
                f"{package.filename!r} is {package.status}; only a Failed package can be retried."
            )
        key = await start_fetch(session, package, None)
        retried = PackageOut.model_validate(package_dict(package, context.part(Downloads)))
    await jobs.dispatch(context.queue, [key])
    log.info("%s asked to fetch %s again", actor, retried.filename)
    return retried


def retry_delay(failures: int, interval: dt.timedelta) -> dt.timedelta:
    """How long after its last failure a Failed package is fetched again."""
    delay: dt.timedelta = interval * 2 ** min(max(0, failures - 1), 16)
    return min(MAX_RETRY_DELAY, delay)


async def due_for_retry(
    session: AsyncSession, uuids: Collection[str], interval: dt.timedelta
) -> set[str]:
    """Of these versions, the Failed ones whose back-off has passed."""
    failed = set(
        (
            await session.execute(
                select(Package.uuid).where(
                    Package.uuid.in_(uuids), Package.status == Status.FAILED.value
                )
            )
        ).scalars()
    )
    if not failed:
        return set()
    # Events name a package by its uuid as the event data shows it (hex; dashed in
    # events recorded before), so both spellings are looked up.
    spelled = {public_uuid(uuid): uuid for uuid in failed} | {uuid: uuid for uuid in failed}
    history: dict[str, tuple[int, dt.datetime | None]] = {}
    rows = await session.execute(
        select(Event.package_uuid, func.count(), func.max(Event.created))
        .where(Event.kind == PackageFailed.kind, Event.package_uuid.in_(list(spelled)))
        .group_by(Event.package_uuid)
    )
    for spelling, count, last in rows.all():
        if spelling is None:
            continue
        uuid = spelled[spelling]
        before, latest = history.get(uuid, (0, None))
        history[uuid] = (before + count, max(filter(None, (latest, last)), default=None))
    now = utcnow()
    due = set()
    for uuid in failed:
        count, failed_at = history.get(uuid, (0, None))
        if failed_at is None or now - failed_at >= retry_delay(count, interval):
            due.add(uuid)
    return due
