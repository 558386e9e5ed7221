"""Publishing a package version: the one sequence uploads and the mesh share.

The caller commits the version's row as `Publishing` in the transaction
that decides it. Then the staged file is renamed into the share dir
(atomic, made durable), and the row is marked `Public` in a transaction of
its own, in which the caller records its event and the jobs that tell the
mesh; those jobs are enqueued once it commits. A crash between the steps
is finished by `recovery` (at the next start, or by another process once
this one's lease runs out).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.models import Chunk, Package
from ods.core.statuses import Status
from ods.jobs import runner as jobs
from ods.jobs.kinds import JobPayload

if TYPE_CHECKING:
    from ods.core.context import Context

INSERT_BATCH = 1000


class ChunkDigest(Protocol):
    @property
    def index(self) -> int: ...

    @property
    def sha1(self) -> str: ...

    @property
    def sha256(self) -> str: ...


async def insert_chunks(
    session: AsyncSession, package_id: int, chunks: Iterable[ChunkDigest]
) -> None:
    """The chunk digests of a version, inserted in batches (a 4 GiB file has 4096)."""
    rows = [
        {"package_id": package_id, "index": c.index, "sha1": c.sha1, "sha256": c.sha256}
        for c in chunks
    ]
    for start in range(0, len(rows), INSERT_BATCH):
        await session.execute(insert(Chunk), rows[start : start + INSERT_BATCH])


async def make_public(
    context: Context,
    package_id: int,
    staged: Path,
    filename: str,
    sha1: str,
    created_ts: int,
    *,
    record: Callable[[AsyncSession, Package], Awaitable[None]] | None = None,
    then: Sequence[JobPayload] = (),
) -> Package:
    """Rename a Publishing version's staged file into the share dir and mark it Public;
    the file's modification time becomes `created_ts`, the origin's creation time.

    `record` adds an event in the same transaction; the jobs in `then` are
    recorded there too and enqueued after the commit. Returns the row.
    """
    await context.files.publish(staged, filename, sha1, created_ts)
    async with context.db.transaction() as session:
        package = await session.get(Package, package_id)
        assert package is not None, "a Publishing row is only removed by its owner or recovery"
        package.status = Status.PUBLIC.value
        if record is not None:
            await record(session, package)
        keys = [await jobs.add_job(session, job) for job in then]
    await jobs.dispatch(context.queue, keys)
    return package
