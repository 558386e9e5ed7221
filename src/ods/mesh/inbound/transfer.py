"""Chunk bytes from a connection into the staging file, checked as they land.

None of this runs on the event loop. A fetch's work is split over threads
so that it can use more than one CPU: each connection's thread receives a
run's body a chunk at a time into page-aligned buffers and writes each chunk
in place at once (so a kill loses at most what was in flight); a checker
thread computes each chunk's SHA-256 and judges it; a file-digest thread
hashes the whole file in index order. A chunk whose SHA-256 does not match is
reported, and the whole file's SHA-256 is rolled back to before it.

SHA-256 is the only digest a receiver computes. The manifest's SHA1 and chunk
SHA1s are checked against the origin's signed statement before a byte is
fetched (`checks.matches`); once every chunk's SHA-256 and the whole file's
match what the origin signed, the bytes are the origin's, so its SHA1s are
theirs too and are taken from the statement.

Writes go to the disk directly (past the page cache) where the platform and
the filesystem allow it: a package coming in does not push the files this
server is serving out of the page cache, and costs less CPU. Where they do
not (tmpfs, some network filesystems, macOS, Windows), ordinary writes are
used. `ods.core.platform` makes the calls.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from ods.core import platform
from ods.mesh.protocol.client import PeerUnreachable
from ods.mesh.protocol.connection import RunConnection
from ods.mesh.protocol.wire import PackageManifest
from ods.packages.digest import CHUNK_SIZE
from ods.packages.progress import DownloadProgress

log = logging.getLogger(__name__)

PIECE_SIZE = 1024 * 1024  # a divisor of CHUNK_SIZE and a multiple of platform.DIRECT_ALIGN
POOL_PIECES = 8  # buffers a fetch receives into, shared by its threads


class StagingFile:
    """The staging file, open for writing pieces in place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = platform.open_file(path, os.O_RDWR)
        self.direct_fd = platform.open_direct(path)

    def write(self, data: memoryview, offset: int) -> None:
        """Write a piece; direct when the filesystem takes it and it is aligned."""
        if self.direct_fd is not None and platform.direct_fits(offset, len(data)):
            if platform.write_direct(self.direct_fd, data, offset):
                return
            log.info("%s does not take direct writes; writing through the cache", self.path)
            os.close(self.direct_fd)
            self.direct_fd = None
        platform.write_at(self.fd, data, offset)

    def read(self, offset: int, length: int) -> bytes:
        return platform.read_at(self.fd, length, offset)

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
    sha256: hashlib._Hash = field(default_factory=hashlib.sha256)

    def update(self, data: memoryview | bytes) -> None:
        self.sha256.update(data)

    def copy(self) -> Digests:
        return Digests(self.sha256.copy())


@dataclass
class Staged:
    """What a staging file left by an earlier attempt holds.

    `good`: the chunks that match their SHA-256. The file digests are already
    fed with the first `prefix_chunks` of them (the unbroken run from chunk
    0), so those are not read again.
    """

    good: set[int] = field(default_factory=set)
    prefix: Digests = field(default_factory=Digests)
    prefix_chunks: int = 0


def scan_staging(path: Path, manifest: PackageManifest) -> Staged:
    """Read the staging file once: its good chunks, and the file digests of their leading run."""
    staged = Staged()
    if not path.exists():
        return staged
    with path.open("rb") as handle:
        for chunk in manifest.chunks:
            handle.seek(chunk.index * CHUNK_SIZE)
            data = handle.read(CHUNK_SIZE)
            if hashlib.sha256(data).hexdigest() != chunk.sha256:
                continue
            staged.good.add(chunk.index)
            if chunk.index == staged.prefix_chunks:
                staged.prefix.update(data)
                staged.prefix_chunks += 1
    return staged


@dataclass(frozen=True)
class Piece:
    """Part of chunk `index`, in a pool buffer; `last` when it completes the chunk."""

    index: int
    buffer: memoryview
    length: int
    last: bool = False


@dataclass(frozen=True)
class BeginChunk:
    """The next pieces are a chunk that may yet turn out bad."""


@dataclass(frozen=True)
class RollBack:
    """The chunk since `BeginChunk` was bad: forget its pieces."""


@dataclass(frozen=True)
class ReadBack:
    """Chunk `index` is already in the staging file: read it from there."""

    index: int


@dataclass(frozen=True)
class RunChecked:
    """Every piece of a run has been posted: settle `done` once they are judged."""

    done: Future[None]


@dataclass(frozen=True)
class Stop:
    """No more messages: the thread ends."""


HasherMessage = Piece | BeginChunk | RollBack | ReadBack | Stop
CheckerMessage = Piece | RunChecked | Stop


class FileHasher:
    """The whole file's digests, fed in index order by a thread of their own.

    The receiving threads post, in file order, either a chunk's pieces as
    they arrive (between `begin` and `end`; a bad chunk is rolled back) or a
    chunk to read back from the staging file. Pieces come in buffers from
    `pool` and go back to it once hashed.
    """

    def __init__(
        self, staging: StagingFile, chunk_size: Callable[[int], int], digests: Digests
    ) -> None:
        self.staging = staging
        self.chunk_size = chunk_size
        self.digests = digests
        self.pool: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
        for _ in range(POOL_PIECES):
            self.pool.put(platform.aligned_buffer(PIECE_SIZE))
        self.items: queue.SimpleQueue[HasherMessage] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="ods-file-digest", daemon=True)
        self.thread.start()

    def post(self, message: HasherMessage) -> None:
        self.items.put(message)

    def _run(self) -> None:
        before = self.digests
        while True:
            message = self.items.get()
            try:
                if isinstance(message, Stop):
                    return
                if self.error is not None:
                    continue
                match message:
                    case Piece(buffer=buffer, length=length):
                        self.digests.update(buffer[:length])
                    case BeginChunk():
                        before = self.digests.copy()
                    case RollBack():
                        self.digests = before
                    case ReadBack(index=index):
                        offset = index * CHUNK_SIZE
                        self.digests.update(self.staging.read(offset, self.chunk_size(index)))
            except Exception as exc:  # raised to the fetch by finish()
                self.error = exc
            finally:
                if isinstance(message, Piece):
                    self.pool.put(message.buffer)

    def finish(self) -> str:
        """Wait for everything posted: the file's SHA-256."""
        self.stop()
        if self.error is not None:
            raise self.error
        return self.digests.sha256.hexdigest()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.post(Stop())
            self.thread.join()


class Receiver:
    """One fetch's state shared by its connections: which chunks are in, and in what order.

    Three kinds of threads share the work. Each connection's thread only
    receives and writes: a piece is on disk before anything else looks at
    it. One checker thread computes each chunk's SHA-256 and judges it; the
    file-digest thread (`FileHasher`) hashes the whole file.

    `staged` is what the staging file held at start (`scan_staging`). Chunks
    go to the file digests in index order: as they arrive when every chunk
    before them is in; otherwise read back from the staging file once the
    gap before them is filled.
    """

    def __init__(
        self,
        staging: StagingFile,
        manifest: PackageManifest,
        progress: DownloadProgress,
        staged: Staged,
    ) -> None:
        self.staging = staging
        self.manifest = manifest
        self.progress = progress
        self.chunks = len(manifest.chunks)
        # Whole and checked, not yet handed to the file digests.
        self.done = {index for index in staged.good if index >= staged.prefix_chunks}
        self.cursor = staged.prefix_chunks  # every chunk before it is in the file digests
        self.feeding: int | None = None  # the chunk handed over as it arrives
        self.bad: dict[int, str] = {}  # chunks that failed their check, until collected
        self.lock = threading.Lock()
        self.aborted = threading.Event()
        self.hasher = FileHasher(staging, self.chunk_size, staged.prefix)
        self.pieces: queue.SimpleQueue[CheckerMessage] = queue.SimpleQueue()
        self.checker = threading.Thread(target=self._check, name="ods-chunk-check", daemon=True)
        self.checker.start()
        self._hand_over()

    @property
    def complete(self) -> bool:
        """Every chunk is in, checked and handed to the file digests."""
        return self.cursor >= self.chunks

    def chunk_size(self, index: int) -> int:
        return min(CHUNK_SIZE, self.manifest.file_size - index * CHUNK_SIZE)

    def finish(self) -> str:
        """Once complete: the whole file's SHA-256."""
        self._stop_checker()
        return self.hasher.finish()

    def close(self) -> None:
        self.aborted.set()
        self._stop_checker()
        self.hasher.stop()

    def _stop_checker(self) -> None:
        if self.checker.is_alive():
            self.pieces.put(Stop())
            self.checker.join()

    def _hand_over(self) -> None:
        while self.feeding is None and self.cursor in self.done:
            self.hasher.post(ReadBack(self.cursor))
            self.done.discard(self.cursor)
            self.cursor += 1

    def _begin(self, index: int) -> bool:
        """Whether chunk `index` goes to the file digests as it arrives."""
        with self.lock:
            self._hand_over()
            if index != self.cursor or self.feeding is not None:
                return False
            self.feeding = index
            self.hasher.post(BeginChunk())
            return True

    def _end(self, index: int, failure: str | None, fed: bool) -> None:
        with self.lock:
            if fed:
                self.feeding = None
                if failure is None:
                    self.cursor = index + 1
                else:
                    self.hasher.post(RollBack())
            elif failure is None:
                self.done.add(index)
            if failure is None:
                size = self.chunk_size(index)
                self.progress.chunks_done += 1
                self.progress.bytes_done += size
                self.progress.bytes_this_run += size
            else:
                self.bad[index] = failure
            self._hand_over()

    def _check(self) -> None:
        """The checker thread: each chunk's SHA-256, judged once its last piece is in."""
        checking: dict[int, tuple[Digests, bool]] = {}
        error: Exception | None = None
        while True:
            message = self.pieces.get()
            if isinstance(message, Stop):
                return
            if isinstance(message, RunChecked):
                if error is None:
                    message.done.set_result(None)
                else:
                    message.done.set_exception(error)
                continue
            index = message.index
            handed = False
            try:
                if error is None:
                    if index not in checking:
                        checking[index] = (Digests(), self._begin(index))
                    chunk, fed = checking[index]
                    chunk.update(message.buffer[: message.length])
                    if fed:
                        # The file digests take it from here, and free the buffer.
                        self.hasher.post(message)
                        handed = True
                    if message.last:
                        del checking[index]
                        self._end(index, self._judge(index, chunk), fed)
            except Exception as exc:  # raised in the connection's thread at the run's end
                error = exc
            finally:
                if not handed:
                    self.hasher.pool.put(message.buffer)

    def _judge(self, index: int, chunk: Digests) -> str | None:
        """Why chunk `index` is bad, or None."""
        if chunk.sha256.hexdigest() != self.manifest.chunks[index].sha256:
            return "SHA-256 mismatch"
        return None

    def receive(
        self,
        connection: RunConnection,
        url: str,
        headers: Mapping[str, str],
        first: int,
        count: int,
    ) -> list[BadChunk]:
        """Ask for a run of chunks and read it into place; once checked, the ones that failed."""
        end = min(self.manifest.file_size, (first + count) * CHUNK_SIZE)
        connection.request(url, headers, end - first * CHUNK_SIZE)
        for index in range(first, first + count):
            size = self.chunk_size(index)
            received = 0
            while received < size:
                buffer = self._take_buffer()
                length = min(PIECE_SIZE, size - received)
                try:
                    self._read_piece(connection, buffer[:length], index)
                    self.staging.write(buffer[:length], index * CHUNK_SIZE + received)
                except BaseException:
                    self.hasher.pool.put(buffer)
                    raise
                received += length
                self.pieces.put(Piece(index, buffer, length, last=received == size))
        checked: Future[None] = Future()
        self.pieces.put(RunChecked(checked))
        checked.result()
        with self.lock:
            return [
                BadChunk(index, self.bad.pop(index))
                for index in range(first, first + count)
                if index in self.bad
            ]

    def _take_buffer(self) -> memoryview:
        while True:
            try:
                return self.hasher.pool.get(timeout=0.5)
            except queue.Empty:
                if self.aborted.is_set():
                    raise PeerUnreachable("the fetch was stopped") from None

    def _read_piece(self, connection: RunConnection, view: memoryview, index: int) -> None:
        filled = 0
        while filled < len(view):
            if self.aborted.is_set():
                raise PeerUnreachable("the fetch was stopped")
            count = connection.read_into(view[filled:])
            if count == 0:
                raise PeerUnreachable(f"the answer ended before chunk {index} was whole")
            filled += count
