"""Two queue backends behind one interface; both carry only a job's key.

`InProcessQueue` (the default) runs jobs as asyncio tasks in the server
process, a bounded number at a time. `ArqQueue` puts them on Redis for
`ods worker` processes, which run the same job function. Either way the
job's row in the database is the truth, so a lost queue entry is found
again at the next start. A job that could not start (its group is full)
goes back to the queue that ran it, and gives up its slot while it waits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

ARQ_FUNCTION = "run_job"

# Runs one job by its key. A number: it could not start; run it again after that many seconds.
RunJob = Callable[[str], Awaitable[float | None]]


class JobQueue(Protocol):
    async def enqueue(self, key: str, attempt: int, defer: float = 0.0) -> None: ...

    async def close(self) -> None: ...


class InProcessQueue:
    """Runs jobs in this process with bounded concurrency."""

    def __init__(self, run: RunJob, concurrency: int, grace_seconds: float = 5.0) -> None:
        self._run = run
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: set[asyncio.Task[None]] = set()
        self._grace_seconds = grace_seconds
        self._closed = False

    @property
    def depth(self) -> int:
        return len(self._tasks)

    async def enqueue(self, key: str, attempt: int, defer: float = 0.0) -> None:
        self._schedule(key, defer)

    def _schedule(self, key: str, defer: float) -> None:
        if self._closed or key in self._waiting:
            return
        self._waiting.add(key)
        task = asyncio.create_task(self._execute(key, defer), name=f"job {key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, key: str, defer: float) -> None:
        if defer > 0:
            await asyncio.sleep(defer)
        again: float | None = None
        async with self._slots:
            self._waiting.discard(key)
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                again = await self._run(key)
            except (OSError, SQLAlchemyError) as exc:
                # The database or the disk failed: the job's row keeps it for a later pass.
                log.warning("job %s could not run: %s", key, str(exc).splitlines()[0])
            except Exception:
                log.exception("job %s crashed", key)
            finally:
                self._running.discard(task)
        if again is not None:
            self._schedule(key, again)

    async def close(self) -> None:
        """Let running jobs finish for a few seconds, then cancel what is left.

        A cancelled job stays in the database and is taken up at the next start.
        """
        self._closed = True
        running = set(self._running)
        for task in self._tasks - running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=self._grace_seconds)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class ArqQueue:
    """Puts job keys on Redis for `ods worker` (arq)."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._pool: object | None = None

    async def _connect(self) -> object:
        if self._pool is None:
            from arq import create_pool
            from arq.connections import RedisSettings

            self._pool = await create_pool(RedisSettings.from_dsn(self.redis_url))
        return self._pool

    async def enqueue(self, key: str, attempt: int, defer: float = 0.0) -> None:
        pool = await self._connect()
        await pool.enqueue_job(  # type: ignore[attr-defined]
            ARQ_FUNCTION, key, _job_id=f"{key}#{attempt}", _defer_by=defer or None
        )

    async def ping(self) -> None:
        pool = await self._connect()
        await pool.ping()  # type: ignore[attr-defined]

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()  # type: ignore[attr-defined]
            self._pool = None
