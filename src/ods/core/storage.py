"""Where package files live, and the atomic, durable move that publishes them.

An upload's staging file, and a published file on its way out, carry the id
of the process that owns them (`ods.core.ownership`) in their name,
`upload-<uuid>~<owner>.part`: recovery removes only those whose owner is gone.
A fetch's staging file is owned by its job's row instead.

Each published file also has a second name, `versions/<sha1>/<filename>` (a
hard link: no extra disk), made from the staged file before it is renamed
into the share dir. Under that name the bytes never change: a new version of
the file gets a new name and the old one is removed. Nginx sends downloads
from there on a cached answer of ODS (deploy/nginx/ods.conf), which then can
never pair one version's ETag with another version's bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid as uuids
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ods.core import platform

log = logging.getLogger(__name__)


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

    def __init__(
        self, share_dir: Path, staging_dir: Path, owner: str, versions_dir: Path | None = None
    ) -> None:
        self.share_dir = share_dir
        self.staging_dir = staging_dir
        self.owner = owner
        self.versions_dir = versions_dir or share_dir.parent / "versions"

    def published(self, filename: str) -> Path:
        return self.share_dir / filename

    def version(self, sha1: str, filename: str) -> Path:
        """The published file's name that only ever holds the version with this SHA1."""
        return self.versions_dir / sha1 / filename

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

    async def publish(
        self, staged: Path, filename: str, sha1: str, created_ts: int | None = None
    ) -> None:
        """Rename into the share dir (atomic) and make the rename durable; `staged`
        holds the version whose SHA1 is `sha1`, verified.

        With `created_ts` (the origin's creation time of the version), the file's
        modification time is set to it first: every server of the mesh then gives the
        same Last-Modified for the same version, so a client that resumes from another
        server with `If-Range: <date>` gets the rest instead of the whole file again.
        """
        await asyncio.to_thread(self._publish, staged, filename, sha1, created_ts)

    def _publish(self, staged: Path, filename: str, sha1: str, created_ts: int | None) -> None:
        if created_ts is not None:
            os.utime(staged, (created_ts, created_ts))
        if os.path.lexists(self.published(filename)):  # a new version of the file
            self._forget_versions(filename, keep=sha1)
        self._link_version(staged, sha1, filename)
        os.replace(staged, self.published(filename))
        platform.sync_dir(self.share_dir)

    def _link_version(self, source: Path, sha1: str, filename: str, fd: int | None = None) -> None:
        """Give `source` (this version's bytes; open as `fd` if given) its name under
        versions/. Best effort: without it, Nginx has ODS send those downloads."""
        link = self.version(sha1, filename)
        temporary = link.parent / f".{uuids.uuid4().hex}.link"
        for _ in range(3):  # another process may remove the empty dir meanwhile
            try:
                link.parent.mkdir(parents=True, exist_ok=True)
                platform.hard_link(source, temporary, fd)
                os.replace(temporary, link)
                return
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("cannot link %s as %s: %s", filename, link, exc.strerror or exc)
                return

    def _forget_versions(self, filename: str, keep: str | None = None) -> None:
        """Remove the names under versions/ of the versions of `filename` but `keep`'s."""
        try:
            dirs = [entry.name for entry in os.scandir(self.versions_dir) if entry.is_dir()]
        except FileNotFoundError:
            return
        for sha1 in dirs:
            if sha1 == keep:
                continue
            if os.path.lexists(self.version(sha1, filename)):
                self._forget_version(sha1, filename)

    def tidy_versions(self, wanted: Mapping[str, set[str]]) -> int:
        """Remove every name under versions/ but those of `wanted` (filename -> SHA1s of
        its versions that have rows), and leftovers of links that were being made.
        Returns how many were removed."""
        removed = 0
        try:
            dirs = [entry.path for entry in os.scandir(self.versions_dir) if entry.is_dir()]
        except FileNotFoundError:
            return 0
        for path in dirs:
            sha1 = os.path.basename(path)
            try:
                with os.scandir(path) as entries:
                    names = [entry.name for entry in entries]
            except FileNotFoundError:  # removed meanwhile by another process
                continue
            for name in names:
                if sha1 not in wanted.get(name, ()) and self._remove(os.path.join(path, name)):
                    removed += 1
            with contextlib.suppress(OSError):
                os.rmdir(path)
        return removed

    def link_published(self, filename: str, sha1: str, created_ts: int) -> bool:
        """Give a file published before versions/ existed its name there, when it is
        still that version: its modification time is the version's creation time
        (`publish` sets it) before and after the link is made. False if it was not."""
        link = self.version(sha1, filename)
        if os.path.lexists(link):
            return False
        try:
            fd = platform.open_file(self.published(filename), os.O_RDONLY)
        except OSError:
            return False
        try:
            held = os.fstat(fd)
            if int(held.st_mtime) != created_ts:
                return False
            self._link_version(self.published(filename), sha1, filename, fd)
            try:
                linked = os.stat(link)
            except FileNotFoundError:
                return False
            if (linked.st_dev, linked.st_ino) != (held.st_dev, held.st_ino):
                self._remove(str(link))  # not the bytes that were checked
                return False
            return True
        finally:
            os.close(fd)

    @staticmethod
    def _remove(path: str) -> bool:
        """Unlink; whether this did (a failure is logged)."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.warning("cannot remove %s: %s", path, exc)
            return False
        return True

    async def withdraw(self, filename: str, uuid: str, sha1: str) -> Path | None:
        """Move a published file out of the share dir, and its version's name out of
        versions/; the caller deletes it."""
        trash = self.staging_dir / f"deleted-{uuid}~{self.owner}.part"
        try:
            await asyncio.to_thread(os.replace, self.published(filename), trash)
        except FileNotFoundError:
            return None
        finally:
            await asyncio.to_thread(self._forget_version, sha1, filename)
        return trash

    def _forget_version(self, sha1: str, filename: str) -> None:
        self._remove(str(self.version(sha1, filename)))
        with contextlib.suppress(OSError):  # other files have this version
            os.rmdir(self.versions_dir / sha1)

    def leftover_uploads(self) -> list[OwnedFile]:
        """Every upload's staging file and every deleted file not yet removed, with owners."""
        return [
            owned_file(path)
            for path in sorted(
                [*self.staging_dir.glob("upload-*.part"), *self.staging_dir.glob("deleted-*.part")]
            )
        ]
