"""Fetching the chunks of one package: runs of chunks on parallel connections until all are checked.

Runs of up to 32 chunks are asked for with signed GETs (ODS_FETCH_PARALLEL_CHUNKS
connections at a time) and received in transfer threads (`transfer`); a chunk
that fails its check is asked for again, up to three times.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from ods.core.errors import one_line
from ods.core.models import Package
from ods.jobs import runner as jobs
from ods.mesh.inbound.transfer import BadChunk, Receiver
from ods.mesh.protocol.client import ChunkTooLarge, PeerLink, signed_get
from ods.mesh.protocol.wire import PackageManifest
from ods.mesh.state import mesh_state

if TYPE_CHECKING:
    from ods.core.context import Context


log = logging.getLogger(__name__)

T = TypeVar("T")

CHUNK_TRIES = 3
PROGRESS_INTERVAL = 1.0
RUN_CHUNKS = 32  # chunks asked for in one request


async def save_progress(context: Context, package_id: int, chunks_done: int) -> None:
    async with context.db.transaction() as session:
        await session.execute(
            update(Package).where(Package.id == package_id).values(chunks_done=chunks_done)
        )


def runs(indices: list[int], longest: int) -> list[tuple[int, int]]:
    """Consecutive indices as (first, count) runs of at most `longest` chunks."""
    found: list[tuple[int, int]] = []
    for index in sorted(indices):
        if found and found[-1][0] + found[-1][1] == index and found[-1][1] < longest:
            found[-1] = (found[-1][0], found[-1][1] + 1)
        else:
            found.append((index, 1))
    return found


async def in_thread(context: Context, stop: Callable[[], None], call: Callable[[], T]) -> T:
    """Run `call` in a transfer thread; if cancelled, `stop` it and wait for it to end."""
    threads = mesh_state(context).transfer_threads
    future = asyncio.get_running_loop().run_in_executor(threads, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        stop()
        await asyncio.wait([future])
        raise


class ChunkFetch:
    """The missing chunks of one package, fetched on parallel connections until all are checked.

    Each connection takes runs from one queue; a chunk that fails its check
    goes back on the queue, up to CHUNK_TRIES times. A saver records the
    progress and renews the job's lease while the connections work.
    """

    def __init__(
        self,
        context: Context,
        link: PeerLink,
        manifest: PackageManifest,
        receiver: Receiver,
        package_id: int | None,
        job_key: str,
    ) -> None:
        self.context = context
        self.link = link
        self.manifest = manifest
        self.receiver = receiver
        self.package_id = package_id
        self.job_key = job_key
        self.queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        self.failures: dict[int, int] = {}

    def refetch(self, bad: BadChunk) -> None:
        log.warning(
            "chunk %d of %s from %s is bad: %s",
            bad.index,
            self.manifest.filename,
            self.link.name,
            bad.reason,
        )
        tries = self.failures[bad.index] = self.failures.get(bad.index, 0) + 1
        if tries >= CHUNK_TRIES:
            raise jobs.RetryLater(
                f"chunk {bad.index} from {self.link.name} failed verification "
                f"{CHUNK_TRIES} times ({bad.reason})"
            )
        self.queue.put_nowait((bad.index, 1))

    async def connection(self) -> None:
        """Takes runs until every chunk is checked; or fails; or is cancelled."""
        connect = mesh_state(self.context).connect
        assert connect is not None
        peer = connect(self.link)
        receiver = self.receiver

        def stop() -> None:
            receiver.aborted.set()
            peer.abort()

        try:
            while not receiver.complete:
                first, count = await self.queue.get()
                path = f"/packages/{self.manifest.uuid}/chunks?start={first}&count={count}"
                url, headers = signed_get(self.context.iss, self.link, path)
                receive = partial(receiver.receive, peer, url, headers, first, count)
                try:
                    bad = await in_thread(self.context, stop, receive)
                except ChunkTooLarge as exc:
                    raise jobs.RetryLater(f"{self.link.name}: {exc}") from None
                for chunk in bad:
                    self.refetch(chunk)
        finally:
            peer.close()

    async def saver(self) -> None:
        """Records progress and renews the lease; best effort: a database that refuses
        writes (its disk is full) must not stop a fetch that can still write its file."""
        warned = False
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            try:
                if self.package_id is not None:
                    done = self.receiver.progress.chunks_done
                    await save_progress(self.context, self.package_id, done)
                await jobs.touch(self.context, self.job_key)
            except (SQLAlchemyError, OSError) as exc:
                if not warned:
                    warned = True
                    log.warning(
                        "could not record the progress of %s: %s",
                        self.manifest.filename,
                        one_line(exc),
                    )

    async def run(self, missing: list[int]) -> None:
        if self.receiver.complete:
            return
        for run in runs(missing, RUN_CHUNKS):
            self.queue.put_nowait(run)
        in_flight = min(self.context.settings.fetch_parallel_chunks, max(1, self.queue.qsize()))
        tasks = [asyncio.create_task(self.connection()) for _ in range(in_flight)]
        tasks.append(asyncio.create_task(self.saver()))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a connection or the saver failed: raise its error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def fetch_chunks(
    context: Context,
    link: PeerLink,
    manifest: PackageManifest,
    receiver: Receiver,
    missing: list[int],
    package_id: int | None,
    job_key: str,
) -> None:
    """Fetch the missing chunks until every chunk is in and checked."""
    await ChunkFetch(context, link, manifest, receiver, package_id, job_key).run(missing)
