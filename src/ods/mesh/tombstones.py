"""Deletes and replacements across the mesh: tombstones.

When an admin deletes a package version, or uploads a replacement for it,
the version's uuid is recorded as a tombstone. Tombstones travel like new
packages do: pushed to every peer (`POST /api/ods/forget`), relayed by each
server that learns of one, and listed in the inventory that reconciliation
and polling read. A server that learns of a tombstone deletes that version
if it has it, stops fetching it, and never takes it again.

Versions that lose a conflict (see `versions.resolve`) get a tombstone of
their own reason, `superseded`, which stays local: nobody deleted them, and
a server that cannot take the winner keeps what it has.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.errors import Conflict, NotFound, OdsError
from ods.core.humanize import timestamp
from ods.core.models import Package, Tombstone
from ods.core.statuses import Status
from ods.jobs import runner as jobs
from ods.jobs.kinds import AnnounceTombstone, Forget
from ods.mesh.inbound import intake
from ods.mesh.inbound.checks import record_refusal
from ods.mesh.outbound import queue_for_peers
from ods.mesh.peers import links
from ods.mesh.protocol.client import PeerClient, PeerLink
from ods.mesh.protocol.wire import TombstoneCard
from ods.packages import service
from ods.packages.naming import normal_name
from ods.packages.service import PROPAGATED
from ods.server.identity import get_identity
from ods.trust.statements import DeleteStatement, PackageStatement, Untrusted, statement_kind
from ods.trust.verify import stored, verify

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)


async def tombstone_cards(session: AsyncSession, rows: Sequence[Tombstone]) -> list[TombstoneCard]:
    """Tombstones as peers see them, each with the version that replaced it, if any."""
    successors = {
        replaces: (uuid, stage)
        for replaces, uuid, stage in (
            await session.execute(
                select(Package.replaces, Package.uuid, Package.stage).where(
                    Package.replaces.in_([row.uuid for row in rows])
                )
            )
        ).all()
    }
    found = []
    for row in rows:
        successor, stage = successors.get(row.uuid, (None, None))
        found.append(
            TombstoneCard.model_validate(
                {
                    "uuid": row.uuid,
                    "filename": row.filename,
                    "reason": row.reason,
                    "created_ts": timestamp(row.created),
                    "replaced_by": successor,
                    "replaced_by_stage": stage,
                    "statement": stored(row.statement),
                }
            )
        )
    return found


async def propagated(context: Context) -> list[TombstoneCard]:
    """The tombstones this server passes on, oldest first."""
    async with context.db.session() as session:
        rows = (
            await session.execute(
                select(Tombstone)
                .where(Tombstone.reason.in_(PROPAGATED))
                .order_by(Tombstone.created, Tombstone.uuid)
            )
        ).scalars()
        return await tombstone_cards(session, list(rows))


async def is_buried(context: Context, uuid: str) -> bool:
    async with context.db.session() as session:
        return await session.get(Tombstone, uuid) is not None


async def announce(context: Context, uuid: str, *, skip_iss: str | None = None) -> int:
    """Queue the tombstone of `uuid` to every peer that is pushed to."""
    return await queue_for_peers(
        context,
        (
            Forget(uuid=uuid, peer=link.iss)
            for link in await links.links(context)
            if link.iss != skip_iss and not link.firewalled_mode
        ),
    )


async def announce_job(context: Context, job: AnnounceTombstone) -> None:
    await announce(context, job.uuid)


async def forget_job(context: Context, job: Forget) -> None:
    link = await links.link_by_iss(context, job.peer)
    if link is None:
        return
    async with context.db.session() as session:
        tombstone = await session.get(Tombstone, job.uuid)
        if tombstone is None:
            return
        [found] = await tombstone_cards(session, [tombstone])
        body = found.model_dump(mode="json")
    client = PeerClient(context.http, context.iss, link)
    try:
        await client.call("POST", "/forget", body)
    except OdsError as exc:
        await links.record_failure(context, link.id, exc)
        raise jobs.RetryLater(exc.message) from None
    await links.record_contact(context, link.id, None)


class DeleteRefused(OdsError):
    status_code = 403
    code = "statement_refused"


def _delete_matches(statement: DeleteStatement, tombstone: TombstoneCard) -> bool:
    return (
        statement.uuid == tombstone.uuid
        and normal_name(statement.filename) == normal_name(tombstone.filename)
        and statement.reason == tombstone.reason
        and (tombstone.replaced_by is None or statement.replaced_by == tombstone.replaced_by)
    )


def _replacement_matches(statement: PackageStatement, tombstone: TombstoneCard) -> bool:
    return (
        tombstone.reason == "replaced"
        and statement.replaces == tombstone.uuid
        and normal_name(statement.filename) == normal_name(tombstone.filename)
        and (tombstone.replaced_by is None or statement.uuid == tombstone.replaced_by)
    )


async def vouch_for(context: Context, link: PeerLink, tombstone: TombstoneCard) -> str:
    """The statement that vouches for a tombstone, checked: a delete signed by a trusted
    server, or the package statement of the version that replaced it. Else DeleteRefused."""
    signed = tombstone.statement
    try:
        if signed is not None and statement_kind(signed) == "package":
            replacement = await verify(context, signed, PackageStatement, via=link.iss)
            if not _replacement_matches(replacement.statement, tombstone):
                raise Untrusted("the replacing version's statement does not name this version")
        else:
            opened = await verify(context, signed, DeleteStatement, via=link.iss)
            if not _delete_matches(opened.statement, tombstone):
                raise Untrusted("the signed delete is for another version")
    except Untrusted as exc:
        reason = f"the delete is not vouched for: {exc}"
        await record_refusal(context, link, "delete", tombstone.uuid, tombstone.filename, reason)
        raise DeleteRefused(reason[0].upper() + reason[1:] + ".") from None
    assert signed is not None
    return signed.model_dump_json()


async def accept(context: Context, link: PeerLink, tombstone: TombstoneCard) -> bool:
    """Apply a peer's tombstone here and pass it on. False if it was known already.

    Raises DeleteRefused unless a trusted server vouches for it, and Conflict
    while the version is being published here; the sender retries later.
    """
    if await is_buried(context, tombstone.uuid):
        return False
    statement = await vouch_for(context, link, tombstone)
    successor_coming = await _successor_coming(context, tombstone)
    if successor_coming and await _replacement_follows(context, link, tombstone, statement):
        await announce(context, tombstone.uuid, skip_iss=link.iss)
        return True
    try:
        await service.delete_package(
            context,
            tombstone.uuid,
            None,
            by_uuid=True,
            reason=tombstone.reason,
            peer=link.name,
            peer_iss=link.iss,
            # Passed on below, to every peer but the one it came from.
            announce=False,
            statement=statement,
        )
    except NotFound:
        async with context.db.transaction() as session:
            await service.bury(
                session, tombstone.uuid, tombstone.filename, tombstone.reason, statement
            )
    await announce(context, tombstone.uuid, skip_iss=link.iss)
    if not successor_coming:
        await release_kept(context, link, tombstone)
    return True


async def accept_all(context: Context, link: PeerLink, tombstones: list[TombstoneCard]) -> int:
    """Apply a peer's tombstones (from its inventory); how many were new here."""
    new = 0
    for tombstone in tombstones:
        try:
            new += await accept(context, link, tombstone)
        except Conflict as exc:
            log.info("tombstone from %s waits: %s", link.name, exc.message)
        except DeleteRefused as exc:
            log.warning("tombstone from %s refused: %s", link.name, exc.message)
    return new


async def _replacement_follows(
    context: Context, link: PeerLink, tombstone: TombstoneCard, statement: str
) -> bool:
    """For a replaced version this server serves, whose successor is coming (see
    `_successor_coming`): keep serving it, fetch the successor, and let it take the
    old one's place.
    """
    assert tombstone.replaced_by is not None, "a successor that is coming has a uuid"
    async with context.db.transaction() as session:
        status = await session.scalar(select(Package.status).where(Package.uuid == tombstone.uuid))
        if status != Status.PUBLIC.value:
            return False
        await service.bury(session, tombstone.uuid, tombstone.filename, tombstone.reason, statement)
    await intake.want(context, link, tombstone.replaced_by)
    return True


async def _successor_coming(context: Context, tombstone: TombstoneCard) -> bool:
    """Whether the version that replaced the tombstone's is one this server will fetch:
    it takes its stage, and has not heard that it is gone too."""
    if tombstone.reason != "replaced" or tombstone.replaced_by is None:
        return False
    me = await get_identity(context.db, context.cipher)
    if tombstone.replaced_by_stage is None or not me.stage.accepts(tombstone.replaced_by_stage):
        return False
    return not await is_buried(context, tombstone.replaced_by)


async def release_kept(context: Context, link: PeerLink, tombstone: TombstoneCard) -> None:
    """Remove a replaced version kept serving while its successor came (see
    `_replacement_follows`), for a tombstone that says no successor is coming any more:
    the package was deleted, or replaced by a version this server does not take."""
    async with context.db.session() as session:
        kept = (
            (
                await session.execute(
                    select(Package.uuid)
                    .join(Tombstone, Tombstone.uuid == Package.uuid)
                    .where(
                        Package.filename == tombstone.filename,
                        Package.status == Status.PUBLIC.value,
                    )
                )
            )
            .scalars()
            .all()
        )
    for uuid in kept:
        try:
            # Its own tombstone is known everywhere already: nothing to pass on.
            await service.delete_package(
                context,
                uuid,
                None,
                by_uuid=True,
                reason="replaced",
                peer=link.name,
                peer_iss=link.iss,
                announce=False,
            )
        except (NotFound, Conflict):
            continue
        log.info(
            "removed %s (%s): it was kept until its successor came, and none is coming",
            tombstone.filename,
            uuid,
        )
