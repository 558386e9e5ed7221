"""Chunk bytes from a connection into the staging file, checked as they land.

This runs in worker threads, one per connection, and never on the event
loop. A run's body is received PIECE_SIZE bytes at a time into a
page-aligned buffer; each piece is written in place at once (so a kill loses
at most what was in flight) and, while it is still in the CPU's cache, fed to
its chunk's SHA-256 and SHA1 and, when the chunks before it are all in, to the
whole file's SHA-256 and SHA1. A chunk whose digests do not match is
reported, and the whole-file digests are rolled back to before it.

Writes go to the disk directly (O_DIRECT) where the filesystem allows it: a
package coming in does not push the files this server is serving out of the
page cache, and costs less CPU. Where it does not (tmpfs, some network
filesystems), ordinary writes are used.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import mmap
import os
import threading
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from ods.packages.digest import CHUNK_SIZE
from ods.packages.progress import Progress
from ods.sync.client import PeerUnreachable
from ods.sync.connection import RunConnection
from ods.sync.schemas import PackageManifest

log = logging.getLogger(__name__)

PIECE_SIZE = 256 * 1024  # a divisor of CHUNK_SIZE and a multiple of ALIGN
ALIGN = 4096  # offsets and lengths of direct writes
DIRECT = getattr(os, "O_DIRECT", 0)


def write_at(fd: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(fd, data, offset)
        data = data[written:]
        offset += written


class StagingFile:
    """The staging file, open for writing pieces in place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR)
        self.direct_fd: int | None = None
        if DIRECT:
            try:
                self.direct_fd = os.open(path, os.O_WRONLY | DIRECT)
            except OSError:
                self.direct_fd = None

    def write(self, data: memoryview, offset: int) -> None:
        """Write a piece; direct when the filesystem takes it and it is aligned."""
        if self.direct_fd is not None and offset % ALIGN == 0 and len(data) % ALIGN == 0:
            try:
                write_at(self.direct_fd, data, offset)
                return
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                log.info("%s does not take direct writes; writing through the cache", self.path)
                os.close(self.direct_fd)
                self.direct_fd = None
        write_at(self.fd, data, offset)

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def sync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        for fd in (self.fd, self.direct_fd):
            if fd is not None:
                os.close(fd)
        self.direct_fd = None


@dataclass
class BadChunk:
    index: int
    reason: str


@dataclass
class Digests:
    sha1: hashlib._Hash = field(default_factory=lambda: hashlib.sha1(usedforsecurity=False))
    sha256: hashlib._Hash = field(default_factory=hashlib.sha256)

    def update(self, data: memoryview | bytes) -> None:
        self.sha1.update(data)
        self.sha256.update(data)

    def copy(self) -> Digests:
        return Digests(self.sha1.copy(), self.sha256.copy())


class Receiver:
    """One fetch's state shared by its connections: which chunks are in, the file's digests.

    `good` are the chunks found whole in the staging file at start. The
    whole-file digests take chunks in index order: a chunk is fed as it
    arrives when every chunk before it is in; otherwise it is read back from
    the staging file once the gap before it is filled.
    """

    def __init__(
        self,
        staging: StagingFile,
        manifest: PackageManifest,
        progress: Progress,
        good: set[int],
        hasher: Executor,
    ) -> None:
        self.staging = staging
        self.hasher = hasher
        self.manifest = manifest
        self.progress = progress
        self.chunks = len(manifest.chunks)
        self.done = set(good)  # whole and checked, not yet fed to the file digests
        self.cursor = 0  # every chunk before it is fed to the file digests
        self.feeding: int | None = None  # a chunk being fed as it arrives
        self.file = Digests()
        self.lock = threading.Lock()
        self.aborted = threading.Event()

    @property
    def complete(self) -> bool:
        return self.cursor >= self.chunks

    def digests(self) -> tuple[str, str]:
        return self.file.sha1.hexdigest(), self.file.sha256.hexdigest()

    def chunk_size(self, index: int) -> int:
        return min(CHUNK_SIZE, self.manifest.file_size - index * CHUNK_SIZE)

    def catch_up(self) -> None:
        """Feed the file digests every checked chunk from the cursor on, from the staging file."""
        with self.lock:
            self._catch_up()

    def _catch_up(self) -> None:
        while self.cursor in self.done and self.feeding is None:
            offset = self.cursor * CHUNK_SIZE
            self.file.update(self.staging.read(offset, self.chunk_size(self.cursor)))
            self.done.discard(self.cursor)
            self.cursor += 1

    def _begin(self, index: int) -> Digests | None:
        """The file digests as before chunk `index` if it can be fed as it arrives."""
        with self.lock:
            self._catch_up()
            if index != self.cursor or self.feeding is not None:
                return None
            self.feeding = index
            return self.file.copy()

    def _end(self, index: int, good: bool, before: Digests | None) -> None:
        with self.lock:
            if before is not None:
                self.feeding = None
                if good:
                    self.cursor = index + 1
                else:
                    self.file = before
            elif good:
                self.done.add(index)
            if good:
                size = self.chunk_size(index)
                self.progress.chunks_done += 1
                self.progress.bytes_done += size
                self.progress.bytes_this_run += size
            self._catch_up()

    def receive(
        self,
        connection: RunConnection,
        url: str,
        headers: Mapping[str, str],
        first: int,
        count: int,
    ) -> list[BadChunk]:
        """Ask for a run of chunks and read it into place, checking each; the ones that failed."""
        end = min(self.manifest.file_size, (first + count) * CHUNK_SIZE)
        connection.request(url, headers, end - first * CHUNK_SIZE)
        # Page-aligned, as direct writes need; freed with the last view of it
        # (an error's traceback may hold one for a while).
        view = memoryview(mmap.mmap(-1, PIECE_SIZE))
        bad: list[BadChunk] = []
        for index in range(first, first + count):
            failure = self._receive_chunk(connection, index, view)
            if failure is not None:
                bad.append(BadChunk(index, failure))
        return bad

    def _receive_chunk(self, connection: RunConnection, index: int, view: memoryview) -> str | None:
        """One chunk, piece by piece; why it failed its check, or None."""
        size = self.chunk_size(index)
        offset = index * CHUNK_SIZE
        chunk = Digests()
        before = self._begin(index)
        good = False
        try:
            received = 0
            while received < size:
                want = min(PIECE_SIZE, size - received)
                filled = 0
                while filled < want:
                    if self.aborted.is_set():
                        raise PeerUnreachable("the fetch was stopped")
                    count = connection.read_into(view[filled:want])
                    if count == 0:
                        raise PeerUnreachable(f"the answer ended before chunk {index} was whole")
                    filled += count
                piece = view[:want]
                self.staging.write(piece, offset + received)
                # The file's digests in the helper thread, the chunk's here: two CPUs.
                feeding = self.hasher.submit(self.file.update, piece) if before else None
                chunk.update(piece)
                if feeding is not None:
                    feeding.result()
                del piece, feeding
                received += want
            expected = self.manifest.chunks[index]
            if chunk.sha256.hexdigest() != expected.sha256:
                return "SHA-256 mismatch"
            if chunk.sha1.hexdigest() != expected.sha1:
                return "SHA1 mismatch"
            good = True
            return None
        finally:
            self._end(index, good, before)
