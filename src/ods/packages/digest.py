"""Write a package to disk while computing every digest ODS keeps, in one pass.

File SHA1, SHA-256 and SHA-512 and the SHA1 and SHA-256 of every 1 MiB chunk
are computed as the bytes arrive. Each chunk is handed to three threads
(hashlib releases the GIL): one updates the file's SHA1 and SHA-256, one its
SHA-512 (the checksum Jamf Pro clients verify), the third hashes the chunk
and writes it. The next chunk is received while the previous one is hashed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ods.core import platform

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class ChunkDigest:
    index: int
    sha1: str
    sha256: str


@dataclass
class FileDigests:
    size: int = 0
    sha1: str = ""
    sha256: str = ""
    sha512: str = ""
    chunks: list[ChunkDigest] = field(default_factory=list)


class DigestingWriter:
    """Buffers incoming bytes into 1 MiB chunks; writes and hashes each in worker threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = platform.open_file(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        self._fd_lock = threading.Lock()
        # Two 1 MiB buffers: one fills from the socket while the other is hashed and written.
        self._filling = bytearray(CHUNK_SIZE)
        self._spare = bytearray(CHUNK_SIZE)
        self._fill = 0
        self._overflow: list[bytes] = []
        self._file_sha1 = hashlib.sha1(usedforsecurity=False)
        self._file_sha256 = hashlib.sha256()
        self._file_sha512 = hashlib.sha512()
        self._chunks: list[ChunkDigest] = []
        self._pending: asyncio.Future[tuple[None, None, None]] | None = None
        self._size = 0

    @property
    def size(self) -> int:
        return self._size + self._fill + sum(len(part) for part in self._overflow)

    def buffer(self, data: bytes | bytearray | memoryview) -> None:
        """Take bytes without waiting; call `drain()` soon after."""
        view = memoryview(data)
        while view:
            if self._fill == CHUNK_SIZE or self._overflow:
                self._overflow.append(bytes(view))
                return
            take = min(len(view), CHUNK_SIZE - self._fill)
            self._filling[self._fill : self._fill + take] = view[:take]
            self._fill += take
            view = view[take:]

    async def drain(self) -> None:
        """Hand every full chunk to the hashing threads."""
        while self._fill == CHUNK_SIZE:
            full = self._filling
            await self._submit(memoryview(full))
            # The spare's hashing finished before _submit started this chunk's.
            self._filling, self._spare = self._spare, full
            self._fill = 0
            overflow, self._overflow = self._overflow, []
            for part in overflow:
                self.buffer(part)

    async def _submit(self, chunk: memoryview) -> None:
        if self._pending is not None:
            await self._pending
        loop = asyncio.get_running_loop()
        index = self._size // CHUNK_SIZE
        self._size += len(chunk)
        self._pending = asyncio.gather(
            loop.run_in_executor(None, self._hash_file, chunk),
            loop.run_in_executor(None, self._file_sha512.update, chunk),
            loop.run_in_executor(None, self._write_chunk, index, chunk),
        )

    def _hash_file(self, chunk: memoryview) -> None:
        self._file_sha1.update(chunk)
        self._file_sha256.update(chunk)

    def _write_chunk(self, index: int, chunk: memoryview) -> None:
        self._chunks.append(
            ChunkDigest(
                index=index,
                sha1=hashlib.sha1(chunk, usedforsecurity=False).hexdigest(),
                sha256=hashlib.sha256(chunk).hexdigest(),
            )
        )
        with self._fd_lock:
            if self._fd < 0:
                return
            view = memoryview(chunk)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]

    async def finish(self) -> FileDigests:
        """Flush the last partial chunk, fsync, and return the digests."""
        await self.drain()
        if self._fill:
            await self._submit(memoryview(self._filling)[: self._fill])
            self._fill = 0
        if self._pending is not None:
            await self._pending
            self._pending = None
        await asyncio.to_thread(os.fsync, self._fd)
        self.close()
        # The upload may wait a while yet for its turn to publish: do not hold 2 MiB meanwhile.
        self._filling = self._spare = bytearray()
        return FileDigests(
            size=self._size,
            sha1=self._file_sha1.hexdigest(),
            sha256=self._file_sha256.hexdigest(),
            sha512=self._file_sha512.hexdigest(),
            chunks=sorted(self._chunks, key=lambda chunk: chunk.index),
        )

    async def abort(self) -> None:
        """Stop and remove the partial file, without awaiting anything: it runs when
        the request fails or is cancelled, and must not be cut short itself."""
        pending, self._pending = self._pending, None
        if pending is not None:
            # Nobody wants the result; take any error so that asyncio does not log it.
            pending.add_done_callback(lambda done: done.cancelled() or done.exception())
        self.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the file; waits for a chunk a thread is writing, and later chunks
        are dropped, so no thread ever writes to a closed (or reused) descriptor."""
        with self._fd_lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
