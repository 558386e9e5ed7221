"""Taking over the jobs of a process that stopped, and saying so on the packages they fetched.

A fetch whose worker died mid-download is set pending again once its
owner is gone (`ods.jobs.owners`); until a process takes it up, its package
says that it waits to be taken over. The fetch that resumes it clears the
reason and keeps the chunks already in the staging file.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.models import Package
from ods.core.statuses import Status
from ods.jobs import runner as jobs
from ods.jobs.kinds import Fetch

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)


def waiting_reason(owner: str | None) -> str:
    return (
        f"Waiting to be taken over: the process fetching it ({owner or 'unknown'}) stopped; "
        "the next free worker resumes it from the chunks already here."
    )


async def note_takeovers(session: AsyncSession, taken: list[jobs.TakenOver]) -> None:
    for item in taken:
        if item.kind != Fetch.kind:
            continue
        try:
            fetch = Fetch.model_validate_json(item.payload)
        except ValidationError:
            continue
        await session.execute(
            update(Package)
            .where(Package.uuid == fetch.uuid, Package.status == Status.DOWNLOADING.value)
            .values(status_reason=waiting_reason(item.owner))
        )


async def resume(context: Context) -> jobs.Resumed:
    """Enqueue pending jobs after taking over those of stopped processes."""
    return await jobs.resume_jobs(context, on_takeover=note_takeovers)
