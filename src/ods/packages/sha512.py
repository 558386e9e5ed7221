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

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from ods.core.loops import Every
from ods.core.models import Package
from ods.core.statuses import Status

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)

READ_SIZE = 1024 * 1024
PER_PASS = 4
PASS_SECONDS = 30.0


def file_digests(path: Path) -> tuple[str, str]:
    """SHA-256 and SHA-512 of a file, read once in 1 MiB blocks."""
    sha256, sha512 = hashlib.sha256(), hashlib.sha512()
    with path.open("rb") as handle:
        while block := handle.read(READ_SIZE):
            sha256.update(block)
            sha512.update(block)
    return sha256.hexdigest(), sha512.hexdigest()


async def fill_one(context: Context, package_id: int) -> str | None:
    """The SHA-512 of a published version, computed and kept when the row has none;
    None when the file is not the row's version (replaced or gone meanwhile)."""
    async with context.db.session() as session:
        package = await session.get(Package, package_id)
        if package is None:
            return None
        if package.sha512 is not None:
            return package.sha512
        uuid, sha256 = package.uuid, package.sha256
        path = context.files.published(package.filename)
    try:
        actual256, actual512 = await asyncio.to_thread(file_digests, path)
    except OSError as exc:
        log.warning("cannot read %s to compute its SHA-512: %s", path.name, exc)
        return None
    if actual256 != sha256:
        return None
    async with context.db.transaction() as session:
        package = await session.get(Package, package_id)
        if package is None or package.uuid != uuid:
            return None
        package.sha512 = package.sha512 or actual512
        return package.sha512


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
