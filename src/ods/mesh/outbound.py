"""Telling peers about this server's packages: one `notify` job per peer that would take one.

After a package becomes Public here, every peer that would accept it (its
stage is at least the peer's, and the peer is not firewalled) gets a
`notify` job; the peer fetches the package itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ods.core.errors import NotFound, OdsError
from ods.core.stages import Stage
from ods.jobs import runner as jobs
from ods.mesh.peers import links
from ods.mesh.protocol.client import PeerClient, PeerLink
from ods.mesh.protocol.wire import Inventory
from ods.mesh.serving import published_cards, published_package

if TYPE_CHECKING:
    from ods.core.context import Context


def notify_key(uuid: str, peer_iss: str) -> str:
    return f"notify:{uuid}:{peer_iss}"


async def announce(context: Context, uuid: str, *, skip_iss: str | None = None) -> int:
    """Queue a notification of a Public package to every peer that would take it."""
    package = await published_package(context, uuid)
    stage = Stage(package.stage)
    keys = []
    async with context.db.transaction() as session:
        for link in await links.links(context):
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
    link = await links.link_by_iss(context, payload["peer"])
    if link is None:
        return
    try:
        package = await published_package(context, payload["uuid"])
    except NotFound:
        return
    client = PeerClient(context.http, context.iss, link)
    try:
        await client.call("POST", "/notify", {"uuid": package.uuid, "stage": package.stage})
    except OdsError as exc:
        await links.record_failure(context, link.id, exc)
        raise
    await links.record_contact(context, link.id, None)
