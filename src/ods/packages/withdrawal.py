"""Withdrawal by stage: what a server does with a package it no longer takes.

A server takes packages from the mesh whose stage is at least its own. When
such a package moves to a stage this server does not take (a Prod server,
a package set back to Test), the server withdraws it: the row stays, with
status `Withdrawn` and the reason, the file stays on disk, and `/share`
no longer serves it. Promoted again, it is `Public` at once, without a
fetch. Packages uploaded to this server are served whatever their stage:
the rule is about what the mesh brings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from ods.core.models import Package
from ods.core.stages import Stage
from ods.core.statuses import IN_SHARE, Status
from ods.events.base import EventData
from ods.events.catalogue import PackageRestored, PackageWithdrawn, package_facts
from ods.events.log import record
from ods.server.identity import get_identity

if TYPE_CHECKING:
    from ods.core.context import Context


def received(package: Package, own_iss: str) -> bool:
    """Whether the version came from the mesh (versions uploaded here are always served)."""
    return package.origin_iss is not None and package.origin_iss != own_iss


def apply_stage_rule(package: Package, server_stage: Stage, own_iss: str) -> EventData | None:
    """Withdraw or restore `package` (a row in the caller's transaction) by its stage;
    the event to record, or None when nothing changes."""
    taken = server_stage.accepts(Stage(package.stage)) or not received(package, own_iss)
    if package.status == Status.PUBLIC.value and not taken:
        package.status = Status.WITHDRAWN.value
        package.status_reason = (
            f"Withdrawn: it is at {package.stage}, and this server ({server_stage}) "
            f"takes {server_stage} and later stages."
        )
        return PackageWithdrawn(**package_facts(package), server_stage=server_stage)
    if package.status == Status.WITHDRAWN.value and taken:
        package.status = Status.PUBLIC.value
        package.status_reason = None
        return PackageRestored(**package_facts(package))
    return None


async def apply_everywhere(context: Context) -> int:
    """The stage rule over every package held here, e.g. after this server's own stage
    changed. Returns how many were withdrawn or restored."""
    me = await get_identity(context.db, context.cipher)
    changed = 0
    async with context.db.transaction() as session:
        held = (
            await session.execute(select(Package).where(Package.status.in_(IN_SHARE)))
        ).scalars()
        for package in held:
            event = apply_stage_rule(package, me.stage, context.iss)
            if event is not None:
                await record(session, event)
                changed += 1
    return changed
