"""Taking in a peer's news of a package: queue a fetch, or follow a stage change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from ods.core.models import Package, Tombstone
from ods.core.stages import Stage
from ods.events.catalogue import PackageStageChanged, package_facts
from ods.events.log import record
from ods.jobs import runner as jobs
from ods.jobs.kinds import Fetch
from ods.mesh import outbound
from ods.mesh.inbound.checks import record_refusal
from ods.mesh.protocol.client import PeerLink
from ods.mesh.protocol.wire import Notification
from ods.mesh.serving import HELD
from ods.packages.withdrawal import apply_stage_rule
from ods.server.identity import get_identity
from ods.trust.statements import StageStatement, Untrusted
from ods.trust.verify import stored_as, verify

if TYPE_CHECKING:
    from ods.core.context import Context


async def accept_notification(context: Context, link: PeerLink, note: Notification) -> bool:
    """Queue a fetch unless this server has, is fetching, or refuses the package."""
    me = await get_identity(context.db, context.cipher)
    if await follow_stage_change(context, link, note):
        await outbound.announce(context, note.uuid, skip_iss=link.iss)
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
        key = await jobs.add_job(session, Fetch(uuid=uuid, peer=link.iss))
    await jobs.dispatch(context.queue, [key])
    return True


async def vouched_stage(
    context: Context, link: PeerLink, note: Notification, current: str | None
) -> str | None:
    """The notification's signed stage change, checked, if it is newer than `current` (the
    stored one); None, and a `trust.refused` event, when it does not hold."""
    try:
        opened = await verify(context, note.stage_statement, StageStatement, via=link.iss)
        change = opened.statement
        if change.uuid != note.uuid or change.stage != note.stage:
            raise Untrusted("the signed stage change is for another version or stage")
        known = stored_as(current, StageStatement)
        if known is not None and (known.changed_ms, known.signer) >= (
            change.changed_ms,
            change.signer,
        ):
            raise Untrusted("a later stage change is known here already")
    except Untrusted as exc:
        reason = f"the stage change is not vouched for: {exc}"
        await record_refusal(context, link, "stage", note.uuid, None, reason)
        return None
    return opened.signed.model_dump_json()


async def follow_stage_change(context: Context, link: PeerLink, note: Notification) -> bool:
    """Take a peer's new stage for a package this server has, when a trusted server signed
    the change, withdrawing or restoring it by this server's stage. True if it changed here
    (and is to be passed on)."""
    async with context.db.session() as session:
        package = (
            await session.execute(select(Package).where(Package.uuid == note.uuid))
        ).scalar_one_or_none()
    if package is None or package.stage == note.stage.value:
        return False
    statement = await vouched_stage(context, link, note, package.stage_statement)
    if statement is None:
        return False
    me = await get_identity(context.db, context.cipher)
    async with context.db.transaction() as session:
        package = (
            await session.execute(select(Package).where(Package.uuid == note.uuid))
        ).scalar_one_or_none()
        if package is None or package.stage == note.stage.value:
            return False
        previous, package.stage = package.stage, note.stage.value
        package.stage_statement = statement
        await record(
            session,
            PackageStageChanged(
                **package_facts(package),
                previous_stage=Stage(previous),
                peer=link.name,
                peer_iss=link.iss,
            ),
        )
        withdrawn_or_back = apply_stage_rule(package, me.stage, context.iss)
        if withdrawn_or_back is not None:
            await record(session, withdrawn_or_back)
        return package.status in HELD
