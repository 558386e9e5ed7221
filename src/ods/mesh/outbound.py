"""Telling peers about this server's packages: one `notify` job per peer that would take one.

After a package becomes Public here, every peer that would accept it (its
stage is at least the peer's, and the peer is not firewalled) gets a
`notify` job; the peer fetches the package itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ods.core.errors import NotFound, OdsError
from ods.core.stages import Stage
from ods.jobs import runner as jobs
from ods.jobs.kinds import AnnouncePackage, JobPayload, Notify
from ods.mesh.peers import links
from ods.mesh.protocol.client import PeerClient, PeerLink
from ods.mesh.protocol.wire import Inventory, Notification
from ods.mesh.serving import published_cards, published_package
from ods.trust.verify import stored

if TYPE_CHECKING:
    from ods.core.context import Context


async def queue_for_peers(context: Context, payloads: Iterable[JobPayload]) -> int:
    """Record one job per peer in one transaction, then enqueue them: the fan-out every
    announcement uses. Returns how many were queued."""
    keys = []
    async with context.db.transaction() as session:
        for payload in payloads:
            keys.append(await jobs.add_job(session, payload))
    await jobs.dispatch(context.queue, keys)
    return len(keys)


async def announce(context: Context, uuid: str, *, skip_iss: str | None = None) -> int:
    """Queue a notification of a package held here to every peer that would take it; after
    a stage change, to every peer, so that those that hold it withdraw or restore it."""
    package = await published_package(context, uuid)
    stage = Stage(package.stage)
    moved = package.stage_statement is not None
    return await queue_for_peers(
        context,
        (
            Notify(uuid=uuid, peer=link.iss)
            for link in await links.links(context)
            if link.iss != skip_iss
            and not link.firewalled_mode
            and (moved or (link.iss != package.origin_iss and link.stage.accepts(stage)))
        ),
    )


async def offer_missing(context: Context, link: PeerLink, inventory: Inventory) -> int:
    """Notify a peer of this server's packages its inventory lacks and it would take."""
    if link.firewalled_mode:
        return 0
    theirs = {p.uuid for p in inventory.packages} | {t.uuid for t in inventory.tombstones}
    return await queue_for_peers(
        context,
        (
            Notify(uuid=package.uuid, peer=link.iss)
            for package in await published_cards(context)
            if package.uuid not in theirs and link.stage.accepts(package.stage)
        ),
    )


async def announce_job(context: Context, job: AnnouncePackage) -> None:
    # Deleted or replaced meanwhile: its tombstone travels instead.
    with contextlib.suppress(NotFound):
        await announce(context, job.uuid)


async def notify_job(context: Context, job: Notify) -> None:
    link = await links.link_by_iss(context, job.peer)
    if link is None:
        return
    try:
        package = await published_package(context, job.uuid)
    except NotFound:
        return
    client = PeerClient(context.http, context.iss, link)
    try:
        note = Notification(
            uuid=package.uuid,
            stage=Stage(package.stage),
            stage_statement=stored(package.stage_statement),
        )
        await client.call("POST", "/notify", note.model_dump(mode="json", exclude_none=True))
    except OdsError as exc:
        await links.record_failure(context, link.id, exc)
        raise jobs.RetryLater(exc.message) from None
    await links.record_contact(context, link.id, None)
