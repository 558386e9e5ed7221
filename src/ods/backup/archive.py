"""The backup file: a plain tar, written and read as a stream, with a manifest.

Members, in order:

    ods-backup.json      the format and its version, so a wrong file fails at once
    database.jsonl       every table's rows (ods.backup.tables)
    secrets/secret_key   the keys the server runs with
    secrets/database_key
    share/<filename>     each published package
    manifest.json        format version, ODS version, migration revision, creation
                         time, and each member's size and SHA-256

The manifest comes last because it holds the digests computed while writing.
A reader checks every member against it before anything is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from ods.core import platform
from ods.core.errors import OdsError

FORMAT = "ods-backup"
FORMAT_VERSION = 1
HEADER = "ods-backup.json"
DATABASE = "database.jsonl"
MANIFEST = "manifest.json"
SECRETS = ("secret_key", "database_key")
COPY_CHUNK = 1024 * 1024


class BackupError(OdsError):
    """The backup cannot be made or restored; the message says why and what to do."""


@dataclass
class Member:
    name: str
    size: int
    sha256: str


@dataclass
class Manifest:
    ods_version: str
    revision: str
    backend: str
    created: str
    members: list[Member] = field(default_factory=list)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT,
            "format_version": self.format_version,
            "ods_version": self.ods_version,
            "revision": self.revision,
            "backend": self.backend,
            "created": self.created,
            "members": [vars(member) for member in self.members],
        }
        return json.dumps(body, indent=1).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            body = json.loads(data)
            check_format(body)
            return cls(
                ods_version=str(body["ods_version"]),
                revision=str(body["revision"]),
                backend=str(body["backend"]),
                created=str(body["created"]),
                members=[
                    Member(str(m["name"]), int(m["size"]), str(m["sha256"]))
                    for m in body["members"]
                ],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupError(f"The backup's manifest is unreadable ({exc}).") from None


def check_format(body: Any) -> None:
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise BackupError("This is not an ODS backup file.")
    if body.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"The backup has format version {body.get('format_version')}; this ODS reads "
            f"version {FORMAT_VERSION}. Restore it with the ODS version that made it "
            f"({body.get('ods_version', 'unknown')})."
        )


def header_bytes(ods_version: str) -> bytes:
    body = {"format": FORMAT, "format_version": FORMAT_VERSION, "ods_version": ods_version}
    return json.dumps(body).encode("utf-8")


def share_member(filename: str) -> str:
    return f"share/{filename}"


def member_filename(name: str) -> str | None:
    """The package filename a share/ member holds, or None if its name is not one."""
    prefix, _, rest = name.partition("/")
    if prefix != "share" or not rest or "/" in rest or "\\" in rest or rest in (".", ".."):
        return None
    return rest


def is_known_member(name: str) -> bool:
    return (
        name in (HEADER, DATABASE)
        or name in {f"secrets/{secret}" for secret in SECRETS}
        or member_filename(name) is not None
    )


class _Hashing(io.RawIOBase):
    """Reads `size` bytes of a file, hashing them and telling `seen` how many went by."""

    def __init__(self, source: BinaryIO, seen: Callable[[int], None]) -> None:
        self.source = source
        self.digest = hashlib.sha256()
        self.seen = seen

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.digest.update(data)
        self.seen(len(data))
        return data


class ArchiveWriter:
    """Writes the backup to `path`.part (owner only) and renames it at `close()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".part")
        if path.exists():
            raise BackupError(f"{path} exists; name a new file (a backup never overwrites one).")
        try:
            fd = platform.create_private_file(self.partial)
        except FileExistsError:
            raise BackupError(
                f"{self.partial} exists: another backup is being written there, or one "
                "was interrupted; remove it and try again."
            ) from None
        except OSError as exc:
            raise BackupError(f"Cannot write {self.partial}: {exc.strerror}.") from None
        self.file = os.fdopen(fd, "wb")
        # Closed in close() or abort(): the writer lives across the steps of a backup.
        self.tar = tarfile.open(  # noqa: SIM115
            fileobj=self.file, mode="w|", format=tarfile.PAX_FORMAT
        )
        self.members: list[Member] = []

    def add_bytes(self, name: str, data: bytes) -> None:
        self._add(name, len(data), io.BytesIO(data), lambda _: None)

    def add_file(self, name: str, source: BinaryIO, size: int, seen: Callable[[int], None]) -> None:
        """Add `size` bytes read from `source` (a file that must not change meanwhile)."""
        self._add(name, size, source, seen)

    def _add(self, name: str, size: int, source: BinaryIO, seen: Callable[[int], None]) -> None:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o600
        info.mtime = int(time.time())
        reader = _Hashing(source, seen)
        self.tar.addfile(info, reader)
        self.members.append(Member(name, size, reader.digest.hexdigest()))

    def close(self, manifest: Manifest) -> None:
        manifest.members = list(self.members)
        data = manifest.to_json()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        info.mode = 0o600
        info.mtime = int(time.time())
        self.tar.addfile(info, io.BytesIO(data))
        self.tar.close()
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.partial, self.path)
        platform.sync_dir(self.path.parent)

    def abort(self) -> None:
        """Leave no partial backup behind that could pass for a whole one."""
        with contextlib.suppress(OSError, tarfile.TarError):
            self.tar.close()
        self.file.close()
        self.partial.unlink(missing_ok=True)


@dataclass
class Extracted:
    """The members of a verified backup, unpacked into a directory of the caller's."""

    manifest: Manifest
    directory: Path
    paths: dict[str, Path]

    def share_files(self) -> Iterator[tuple[str, Path]]:
        for name, path in self.paths.items():
            filename = member_filename(name)
            if filename is not None:
                yield filename, path


def extract(source: Path, into: Path, seen: Callable[[int], None]) -> Extracted:
    """Unpack `source` into the directory `into`, checking every member against the manifest.

    Members are written under names of our own (never the tar's paths), so a crafted
    file cannot write outside `into`. BackupError if the file is not a whole, unaltered
    backup in a format this version reads.
    """
    try:
        with source.open("rb") as file, tarfile.open(fileobj=file, mode="r|") as tar:
            return _extract(tar, into, seen)
    except FileNotFoundError:
        raise BackupError(f"{source}: no such file.") from None
    except (tarfile.TarError, EOFError) as exc:
        raise BackupError(
            f"{source} is damaged or truncated ({exc}); nothing was restored."
        ) from None


def _extract(tar: tarfile.TarFile, into: Path, seen: Callable[[int], None]) -> Extracted:
    found: dict[str, Member] = {}
    paths: dict[str, Path] = {}
    manifest: Manifest | None = None
    for number, info in enumerate(tar):
        if manifest is not None:
            raise BackupError(f"The backup has {info.name!r} after its manifest.")
        if not info.isfile():
            raise BackupError(f"The backup holds {info.name!r}, which is not a file.")
        handle = tar.extractfile(info)
        assert handle is not None
        if number == 0:
            if info.name != HEADER or info.size > COPY_CHUNK:
                raise BackupError("This is not an ODS backup file.")
            data = handle.read()
            check_format(_json(data))
            found[HEADER] = Member(HEADER, len(data), hashlib.sha256(data).hexdigest())
            continue
        if info.name == MANIFEST:
            manifest = Manifest.from_json(handle.read())
            continue
        if not is_known_member(info.name) or info.name in found:
            raise BackupError(f"The backup holds an unexpected member {info.name!r}.")
        path = into / f"member-{number}"
        found[info.name] = Member(info.name, info.size, _copy(handle, path, seen))
        paths[info.name] = path
    if manifest is None:
        raise BackupError("The backup has no manifest: it is truncated.")
    _verify(manifest, found)
    return Extracted(manifest, into, paths)


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise BackupError("This is not an ODS backup file.") from None


def _copy(handle: IO[bytes], path: Path, seen: Callable[[int], None]) -> str:
    digest = hashlib.sha256()
    fd = platform.create_private_file(path)
    with os.fdopen(fd, "wb") as out:
        while data := handle.read(COPY_CHUNK):
            digest.update(data)
            out.write(data)
            seen(len(data))
    return digest.hexdigest()


def _verify(manifest: Manifest, found: dict[str, Member]) -> None:
    listed = {member.name: member for member in manifest.members}
    missing = sorted(set(listed) - set(found))
    if missing:
        raise BackupError(f"The backup lacks {missing[0]!r}, which its manifest lists.")
    extra = sorted(set(found) - set(listed))
    if extra:
        raise BackupError(f"The backup holds {extra[0]!r}, which its manifest does not list.")
    for name, member in found.items():
        if member != listed[name]:
            raise BackupError(
                f"{name!r} in the backup does not match its manifest (size or SHA-256): "
                "the file was altered or damaged; nothing was restored."
            )
    for name in (HEADER, DATABASE, *(f"secrets/{secret}" for secret in SECRETS)):
        if name not in found:
            raise BackupError(f"The backup lacks {name!r}.")
