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

from ods.core.models import Package
from ods.jobs import runner as jobs
from ods.mesh.inbound.transfer import BadChunk, Receiver
from ods.mesh.protocol.client import ChunkTooLarge, PeerLink, signed_get
from ods.mesh.protocol.wire import PackageManifest

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
    future = asyncio.get_running_loop().run_in_executor(context.transfer_threads, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        stop()
        await asyncio.wait([future])
        raise


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
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for run in runs(missing, RUN_CHUNKS):
        queue.put_nowait(run)
    failures: dict[int, int] = {}
    in_flight = min(context.settings.fetch_parallel_chunks, max(1, queue.qsize()))

    def refetch(bad: BadChunk) -> None:
        log.warning(
            "chunk %d of %s from %s is bad: %s",
            bad.index,
            manifest.filename,
            link.name,
            bad.reason,
        )
        tries = failures[bad.index] = failures.get(bad.index, 0) + 1
        if tries >= CHUNK_TRIES:
            raise jobs.RetryLater(
                f"chunk {bad.index} from {link.name} failed verification "
                f"{CHUNK_TRIES} times ({bad.reason})"
            )
        queue.put_nowait((bad.index, 1))

    async def connection() -> None:
        # Returns once every chunk is checked; or fails; or is cancelled.
        peer = context.connect(link)

        def stop() -> None:
            receiver.aborted.set()
            peer.abort()

        try:
            while not receiver.complete:
                first, count = await queue.get()
                path = f"/packages/{manifest.uuid}/chunks?start={first}&count={count}"
                url, headers = signed_get(context.iss, link, path)
                receive = partial(receiver.receive, peer, url, headers, first, count)
                try:
                    bad = await in_thread(context, stop, receive)
                except ChunkTooLarge as exc:
                    raise jobs.RetryLater(f"{link.name}: {exc}") from None
                for chunk in bad:
                    refetch(chunk)
        finally:
            peer.close()

    async def saver() -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            if package_id is not None:
                await save_progress(context, package_id, receiver.progress.chunks_done)
            await jobs.touch(context, job_key)

    if receiver.complete:
        return
    tasks = [asyncio.create_task(connection()) for _ in range(in_flight)]
    tasks.append(asyncio.create_task(saver()))
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # a connection or the saver failed: raise its error
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
