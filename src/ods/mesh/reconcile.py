"""Anti-entropy and polling: compare inventories with a peer and converge.

Every server reconciles with each peer at start-up, right after registering,
and on an interval: it applies the peer's tombstones, fetches what the peer
has and it lacks (and what failed here, once its back-off has passed: see
`ods.packages.retry`), and notifies the peer of what the peer lacks. A server that
was down or partitioned converges without a new upload. A firewalled server,
which peers do not push to, does the same more often: that is its polling.
Reconciling also exchanges server cards, so each side knows the other's
current stage and firewalled mode.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from ods.core.errors import OdsError
from ods.core.models import Package, Peer, Tombstone
from ods.core.stages import Stage
from ods.jobs import runner as jobs
from ods.jobs.kinds import Fetch, Reconcile
from ods.mesh import outbound, serving, tombstones
from ods.mesh.inbound.adopt import adopt_statements
from ods.mesh.inbound.intake import follow_stage_change
from ods.mesh.peers import links, registration
from ods.mesh.protocol.client import PeerClient, PeerLink
from ods.mesh.protocol.wire import Inventory, Notification, ServerCard
from ods.packages import withdrawal
from ods.packages.retry import due_for_retry, start_fetch
from ods.server.identity import get_identity
from ods.trust.keys import check_key, signing_key
from ods.trust.statements import Untrusted

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)

INVENTORY_LIMIT = 16 * 1024 * 1024  # thousands of packages and tombstones, with statements


async def apply_card(context: Context, link: PeerLink, card: ServerCard) -> None:
    """Keep what this server knows of a peer's stage, name and firewalled mode current,
    and pin its signing key if it is new here (a link made before keys were exchanged)."""
    if card.iss != link.iss:
        return
    if card.public_key is not None:
        try:
            await check_key(context, link.iss, card.public_key, via=link.iss)
        except Untrusted as exc:
            log.warning("%s sent a server card with another signing key: %s", link.name, exc)
    async with context.db.transaction() as session:
        peer = await session.get(Peer, link.id)
        if peer is None:
            return
        peer.name = card.name or peer.name
        peer.stage = card.stage.value
        peer.firewalled_mode = card.firewalled_mode
    links.forget_links(context)


async def exchange_cards(context: Context, client: PeerClient) -> None:
    me = await get_identity(context.db, context.cipher)
    card = registration.server_card(me, (await signing_key(context)).public)
    answer = await client.call("POST", "/hello", card)
    await apply_card(context, client.link, answer.parse(ServerCard, client.name, "a server card"))


async def inventory(context: Context) -> Inventory:
    """What this server offers its peers: its published packages and its tombstones."""
    return Inventory(
        packages=await serving.published_cards(context),
        tombstones=await tombstones.propagated(context),
    )


async def follow_stages(context: Context, link: PeerLink, inventory: Inventory) -> int:
    """Take the signed stage changes of the peer's packages that this server holds at another
    stage: a stage change missed while a server was down is repaired here. Returns how
    many packages changed stage."""
    offered = {card.uuid: card for card in inventory.packages if card.stage_statement}
    if not offered:
        return 0
    async with context.db.session() as session:
        held = (
            await session.execute(
                select(Package.uuid, Package.stage).where(Package.uuid.in_(list(offered)))
            )
        ).all()
    changed = 0
    for uuid, stage in held:
        card = offered[uuid]
        if card.stage.value == stage:
            continue
        note = Notification(uuid=uuid, stage=card.stage, stage_statement=card.stage_statement)
        if await follow_stage_change(context, link, note):
            await outbound.announce(context, uuid, skip_iss=link.iss)
            changed += 1
    return changed


async def reconcile_with(context: Context, link: PeerLink) -> int:
    """Fetch what the peer has and this server lacks; offer it what it lacks.

    Returns how many fetches were queued.
    """
    client = PeerClient(context.http, context.iss, link)
    try:
        await exchange_cards(context, client)
        answer = await client.call("GET", "/packages", limit=INVENTORY_LIMIT)
        inventory = answer.parse(Inventory, client.name, "an inventory")
    except OdsError as exc:
        await links.record_failure(context, link.id, exc)
        raise jobs.RetryLater(exc.message) from None
    await tombstones.accept_all(context, link, inventory.tombstones)
    await adopt_statements(context, link, inventory.packages)
    await follow_stages(context, link, inventory)
    me = await get_identity(context.db, context.cipher)
    wanted = [p for p in inventory.packages if me.stage.accepts(Stage(p.stage))]
    keys = []
    async with context.db.transaction() as session:
        uuids = [p.uuid for p in wanted]
        known = set(
            (await session.execute(select(Package.uuid).where(Package.uuid.in_(uuids)))).scalars()
        )
        buried = set(
            (
                await session.execute(select(Tombstone.uuid).where(Tombstone.uuid.in_(uuids)))
            ).scalars()
        )
        interval = dt.timedelta(seconds=context.settings.reconcile_interval)
        retry = await due_for_retry(session, known, interval)
        for package in wanted:
            if package.uuid in buried:
                continue
            if package.uuid in retry:
                row = await session.scalar(select(Package).where(Package.uuid == package.uuid))
                if row is not None:
                    keys.append(await start_fetch(session, row, link.iss))
                    log.info(
                        "fetching %s again: it failed here, %s has it", row.filename, link.name
                    )
                continue
            if package.uuid in known:
                continue
            keys.append(await jobs.add_job(session, Fetch(uuid=package.uuid, peer=link.iss)))
    await jobs.dispatch(context.queue, keys)
    offered = await outbound.offer_missing(context, link, inventory)
    if keys or offered:
        log.info(
            "reconciling with %s: fetching %d package(s), offering %d",
            link.name,
            len(keys),
            offered,
        )
    return len(keys)


async def reconcile_job(context: Context, job: Reconcile) -> None:
    link = await links.link_by_iss(context, job.peer)
    if link is not None:
        await reconcile_with(context, link)


async def reconcile_soon(context: Context, peer_iss: str) -> None:
    """Reconcile with one peer now, e.g. right after registering with it."""
    await jobs.submit(context, Reconcile(peer=peer_iss))


async def reconcile_all(context: Context) -> None:
    # This server's own stage may have changed since the last round.
    await withdrawal.apply_everywhere(context)
    for link in await links.links(context):
        if link.firewalled_mode:
            continue  # it cannot be reached; it polls this server instead
        await jobs.submit(context, Reconcile(peer=link.iss))
