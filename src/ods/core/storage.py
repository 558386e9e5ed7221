"""Where package files live, and the atomic, durable move that publishes them.

An upload's staging file, and a published file on its way out, carry the id
of the process that owns them (`ods.core.ownership`) in their name,
`upload-<uuid>~<owner>.part`: recovery removes only those whose owner is gone.
A fetch's staging file is owned by its job's row instead.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from ods.core import platform


@dataclass(frozen=True)
class OwnedFile:
    """A staging file of an upload or a delete; `owner` is None in a name from before owners."""

    path: Path
    uuid: str
    owner: str | None


def owned_file(path: Path) -> OwnedFile:
    stem = path.name.removesuffix(".part").partition("-")[2]
    uuid, _, owner = stem.partition("~")
    return OwnedFile(path=path, uuid=uuid, owner=owner or None)


class PackageFiles:
    """The share dir (published files) and the staging dir (files in flight)."""

    def __init__(self, share_dir: Path, staging_dir: Path, owner: str) -> None:
        self.share_dir = share_dir
        self.staging_dir = staging_dir
        self.owner = owner

    def published(self, filename: str) -> Path:
        return self.share_dir / filename

    def upload(self, uuid: str) -> Path:
        """This process's staging file of an upload."""
        return self.staging_dir / f"upload-{uuid}~{self.owner}.part"

    def uploads_of(self, uuid: str) -> list[OwnedFile]:
        """The staging files of an upload of `uuid`, whichever process wrote them."""
        return [
            owned_file(path)
            for path in sorted(
                [
                    *self.staging_dir.glob(f"upload-{uuid}~*.part"),
                    *self.staging_dir.glob(f"upload-{uuid}.part"),
                ]
            )
        ]

    def download(self, uuid: str) -> Path:
        """A package being fetched from a peer; kept across restarts to resume."""
        return self.staging_dir / f"download-{uuid}.part"

    def downloads(self) -> dict[str, Path]:
        """Every download staging file, by the uuid of the version it holds."""
        return {
            path.name.removeprefix("download-").removesuffix(".part"): path
            for path in sorted(self.staging_dir.glob("download-*.part"))
        }

    async def publish(self, staged: Path, filename: str, created_ts: int | None = None) -> None:
        """Rename into the share dir (atomic) and make the rename durable.

        With `created_ts` (the origin's creation time of the version), the file's
        modification time is set to it first: every server of the mesh then gives the
        same Last-Modified for the same version, so a client that resumes from another
        server with `If-Range: <date>` gets the rest instead of the whole file again.
        """
        await asyncio.to_thread(self._publish, staged, self.published(filename), created_ts)

    def _publish(self, staged: Path, target: Path, created_ts: int | None) -> None:
        if created_ts is not None:
            os.utime(staged, (created_ts, created_ts))
        os.replace(staged, target)
        platform.sync_dir(self.share_dir)

    async def withdraw(self, filename: str, uuid: str) -> Path | None:
        """Move a published file out of the share dir; the caller deletes it."""
        trash = self.staging_dir / f"deleted-{uuid}~{self.owner}.part"
        try:
            await asyncio.to_thread(os.replace, self.published(filename), trash)
        except FileNotFoundError:
            return None
        return trash

    def leftover_uploads(self) -> list[OwnedFile]:
        """Every upload's staging file and every deleted file not yet removed, with owners."""
        return [
            owned_file(path)
            for path in sorted(
                [*self.staging_dir.glob("upload-*.part"), *self.staging_dir.glob("deleted-*.part")]
            )
        ]
