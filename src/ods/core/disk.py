"""Free disk space: whether an upload or a fetch fits, and recognising a full disk.

ODS keeps ODS_MIN_FREE_SPACE free on the disk of its staging and share dirs
(one filesystem), so the database, the logs and the system still have room
when packages fill it. An upload that would eat into that reserve is refused
with 507; a fetch waits until space is freed (`ods.mesh.inbound.space`).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from ods.core.config import Settings
from ods.core.errors import InsufficientStorage
from ods.core.humanize import size_hr

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# How the database drivers say their disk is full: SQLite (SQLITE_FULL),
# PostgreSQL (53100 disk_full) and MariaDB (1021 "Disk full", 1114 "table is full").
FULL_MESSAGES = ("database or disk is full", "no space left on device", "disk full", "' is full")


@dataclass(frozen=True)
class DiskSpace:
    """Free space on one disk, and how much of it ODS keeps in reserve."""

    free: int
    total: int
    reserve: int

    @property
    def usable(self) -> int:
        """What uploads and fetches may still take."""
        return max(0, self.free - self.reserve)

    def fits(self, size: int) -> bool:
        return size <= self.usable

    @property
    def low(self) -> bool:
        """Less than the reserve is free (or nothing at all, when the reserve is 0)."""
        return self.free < self.reserve or self.free == 0

    def shortfall(self, size: int) -> str:
        """Says why `size` bytes do not fit, in an admin's words."""
        return (
            f"{size_hr(size)} does not fit: the data disk has {size_hr(self.free)} free "
            f"and ODS_MIN_FREE_SPACE keeps {size_hr(self.reserve)} of it free"
        )

    def details(self, size: int) -> list[dict[str, int]]:
        return [
            {
                "needed_bytes": size,
                "free_bytes": self.free,
                "reserve_bytes": self.reserve,
                "usable_bytes": self.usable,
            }
        ]


def disk_space(settings: Settings, path: Path | None = None) -> DiskSpace:
    """Free space on the disk of `path` (the staging dir by default)."""
    stats = os.statvfs(path or settings.staging_dir)
    total = stats.f_blocks * stats.f_frsize
    return DiskSpace(
        free=stats.f_bavail * stats.f_frsize,
        total=total,
        reserve=settings.free_space_reserve(total),
    )


def check_fits(settings: Settings, size: int, what: str) -> None:
    """InsufficientStorage (507) unless `size` bytes fit beside the reserve."""
    space = disk_space(settings)
    if not space.fits(size):
        raise InsufficientStorage(
            f"{what} refused: {space.shortfall(size)}. Free space on the server's disk, "
            "or lower ODS_MIN_FREE_SPACE.",
            details=space.details(size),
        )


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error is a full disk (or quota): the OS's, or a database's own words."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in FULL_ERRNOS:
            return True
        text = str(current).lower()
        if any(message in text for message in FULL_MESSAGES):
            return True
        current = current.__cause__ or current.__context__
    return False
