"""SHA-512 for versions that arrived without one: uploaded before ODS kept it, or
received from an origin of an older version whose statement does not carry it.

New uploads get their SHA-512 in the upload's single pass, and receivers take
it from the origin's signed statement. For the others this server reads the
published file once, computes SHA-256 and SHA-512 together, and keeps the
SHA-512 only when the SHA-256 is the one the row holds: the bytes are then the
origin's, so the SHA-512 is the origin's too. The work is bounded (a few
versions per pass) and resumable (what is done is committed; a restart goes
on with the rest).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from ods.core.loops import Every
from ods.core.models import Package
from ods.core.sha512 import fill_one
from ods.core.statuses import Status

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)

PER_PASS = 4
PASS_SECONDS = 30.0


async def fill_missing(context: Context, limit: int = PER_PASS, after: int = 0) -> list[int]:
    """Compute the SHA-512 of up to `limit` Public versions after id `after` that lack it;
    the ids looked at (a file that cannot be read is left for a later round)."""
    async with context.db.session() as session:
        ids = list(
            await session.scalars(
                select(Package.id)
                .where(
                    Package.id > after,
                    Package.sha512.is_(None),
                    Package.status == Status.PUBLIC.value,
                )
                .order_by(Package.id)
                .limit(limit)
            )
        )
    filled = 0
    for package_id in ids:
        if await fill_one(context, package_id) is not None:
            filled += 1
    if filled:
        log.info("computed the SHA-512 of %d package(s) that had none", filled)
    return ids


class Sha512Backfill(Every):
    """Runs `fill_missing` now and then in `ods serve` until every version has one."""

    def __init__(self, context: Context, seconds: float = PASS_SECONDS) -> None:
        after = 0

        async def step() -> None:
            # A cursor, so that a few unreadable files never hold back the rest.
            nonlocal after
            ids = await fill_missing(context, after=after)
            after = ids[-1] if ids else 0

        super().__init__(seconds, step, what="SHA-512 backfill", log=log)
