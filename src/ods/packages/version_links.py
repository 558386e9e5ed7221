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
from ods.core.statuses import IN_SHARE

if TYPE_CHECKING:
    from ods.core.context import Context
    from ods.core.storage import PackageFiles

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
    in_share = [(r.filename, r.sha1, timestamp(r.created)) for r in rows if r.status in IN_SHARE]
    removed, made = await asyncio.to_thread(_tidy, context.files, wanted, in_share)
    if removed or made:
        log.info(
            "versions/: removed %d name(s) of versions gone, made %d for published files",
            removed,
            made,
        )


def _tidy(
    files: PackageFiles, wanted: dict[str, set[str]], in_share: list[tuple[str, str, int]]
) -> tuple[int, int]:
    """The names removed, and those made, in one go off the event loop."""
    removed = files.tidy_versions(wanted)
    made = sum(files.link_published(*version) for version in in_share)
    return removed, made
