"""The admin's list of peers, with each link's state and its pending work."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from ods.core.humanize import iso, timestamp
from ods.core.models import Job, Package, Peer
from ods.core.stages import Stage
from ods.core.statuses import Status
from ods.core.urls import transport
from ods.jobs.kinds import Notify
from ods.jobs.runner import JobStatus
from ods.mesh.schemas import PeerOut

if TYPE_CHECKING:
    from ods.core.context import Context


async def list_peers(context: Context) -> list[PeerOut]:
    async with context.db.session() as session:
        peers = (await session.execute(select(Peer).order_by(Peer.id))).scalars().all()
        counts = await session.execute(
            select(Package.source_peer_id, func.count())
            .where(Package.status == Status.DOWNLOADING.value)
            .group_by(Package.source_peer_id)
        )
        pending: dict[int | None, int] = {peer_id: count for peer_id, count in counts}
        waiting = (
            await session.execute(
                select(Job.payload).where(
                    Job.kind == Notify.kind,
                    Job.status.in_((JobStatus.PENDING, JobStatus.RUNNING)),
                )
            )
        ).scalars()
        outgoing = Counter(Notify.model_validate_json(payload).peer for payload in waiting)
    return [
        PeerOut(
            firewalled_mode=peer.firewalled_mode,
            id=peer.id,
            iss=peer.iss,
            name=peer.name,
            registered_on=iso(peer.registered_on),
            registered_on_ts=timestamp(peer.registered_on),
            stage=Stage(peer.stage),
            url=peer.url,
            transport=transport(peer.url),
            reachable=peer.reachable,
            last_contact=iso(peer.last_contact) if peer.last_contact else None,
            last_error=peer.last_error,
            pending_from=pending.get(peer.id, 0),
            pending_to=outgoing.get(peer.iss, 0),
        )
        for peer in peers
    ]
