"""At start: the names under versions/ (`ods.core.storage`) made to match the packages.

Names of versions that no row has any more (a delete cut short by a stop) are
removed, and files published before versions/ existed get theirs. Another
process of the site that publishes meanwhile may lose a name made a moment
before: its downloads through Nginx then ask ODS each time, which is slower,
never wrong.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import TYPE_CHECKING

from sqlalchemy import select

from ods.core.humanize import timestamp
from ods.core.models import Package
from ods.core.statuses import Status

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)


async def tidy_version_links(context: Context) -> None:
    async with context.db.session() as session:
        rows = (
            await session.execute(
                select(Package.filename, Package.sha1, Package.status, Package.created)
            )
        ).all()
    wanted: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        wanted[row.filename].add(row.sha1)
    files = context.files
    removed = await asyncio.to_thread(files.tidy_versions, wanted)
    made = 0
    for row in rows:
        if row.status == Status.PUBLIC.value:
            made += await asyncio.to_thread(
                files.link_published, row.filename, row.sha1, timestamp(row.created)
            )
    if removed or made:
        log.info(
            "versions/: removed %d name(s) of versions gone, made %d for published files",
            removed,
            made,
        )
