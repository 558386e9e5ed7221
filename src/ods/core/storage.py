"""Where package files live, and the atomic, durable move that publishes them."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from ods.core import platform


class PackageFiles:
    """The share dir (published files) and the staging dir (files in flight)."""

    def __init__(self, share_dir: Path, staging_dir: Path) -> None:
        self.share_dir = share_dir
        self.staging_dir = staging_dir

    def published(self, filename: str) -> Path:
        return self.share_dir / filename

    def upload(self, uuid: str) -> Path:
        return self.staging_dir / f"upload-{uuid}.part"

    def download(self, uuid: str) -> Path:
        """A package being fetched from a peer; kept across restarts to resume."""
        return self.staging_dir / f"download-{uuid}.part"

    def downloads(self) -> dict[str, Path]:
        """Every download staging file, by the uuid of the version it holds."""
        return {
            path.name.removeprefix("download-").removesuffix(".part"): path
            for path in sorted(self.staging_dir.glob("download-*.part"))
        }

    async def publish(self, staged: Path, filename: str) -> None:
        """Rename into the share dir (atomic) and make the rename durable."""
        await asyncio.to_thread(self._publish, staged, self.published(filename))

    def _publish(self, staged: Path, target: Path) -> None:
        os.replace(staged, target)
        platform.sync_dir(self.share_dir)

    async def withdraw(self, filename: str, uuid: str) -> Path | None:
        """Move a published file out of the share dir; the caller deletes it."""
        trash = self.staging_dir / f"deleted-{uuid}.part"
        try:
            await asyncio.to_thread(os.replace, self.published(filename), trash)
        except FileNotFoundError:
            return None
        return trash

    def leftover_uploads(self) -> list[Path]:
        return sorted(
            [*self.staging_dir.glob("upload-*.part"), *self.staging_dir.glob("deleted-*.part")]
        )
