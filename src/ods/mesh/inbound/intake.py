"""Taking in a peer's news of a package: queue a fetch, or follow a stage change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from ods.core.models import Package, Tombstone
from ods.events.log import record_event
from ods.jobs import runner as jobs
from ods.jobs.kinds import Fetch
from ods.mesh import outbound
from ods.mesh.protocol.client import PeerLink
from ods.mesh.protocol.wire import Notification
from ods.packages.schemas import Status
from ods.server.identity import get_identity

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


async def follow_stage_change(context: Context, link: PeerLink, note: Notification) -> bool:
    """Take a peer's new stage for a package this server has. True if it changed here."""
    async with context.db.transaction() as session:
        package = (
            await session.execute(select(Package).where(Package.uuid == note.uuid))
        ).scalar_one_or_none()
        if package is None or package.stage == note.stage.value:
            return False
        previous, package.stage = package.stage, note.stage.value
        await record_event(
            session,
            "package.stage_changed",
            f"{package.filename} moved from {previous} to {note.stage.value} (from {link.name})",
            package_uuid=package.uuid,
        )
        return package.status == Status.PUBLIC.value
