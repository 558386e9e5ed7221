"""SHA-512 of a published version that has none, worked out from its file.

Kept only when the file's SHA-256 is the one the row holds: the bytes are then
the origin's, so the SHA-512 is the one the origin would have stated. Used by
the background pass of `ods.packages.sha512` and by anything that needs the
checksum at once (a Jamf Pro record).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ods.core.models import Package

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)

READ_SIZE = 1024 * 1024


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
