"""`ods worker`: an arq worker that runs the same jobs `ods serve` runs in-process."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from arq import Worker
from arq.connections import RedisSettings
from arq.worker import Retry, func

from ods.core.context import Context
from ods.jobs.queue import ARQ_FUNCTION

log = logging.getLogger(__name__)

# The queue's own limit; a job renews its lease in the database while it runs.
JOB_TIMEOUT_SECONDS = 6 * 3600
# arq counts each wait for a full group (a Retry) as a try; the job's row counts
# the real attempts. arq's own expiry (a day) ends a wait long before this, and
# the scheduler's pass over pending jobs queues the job again.
WAIT_TRIES = 1_000_000


def build_worker(
    context: Context,
    redis_url: str,
    *,
    run: Callable[[str], Awaitable[float | None]],
    on_start: Callable[[], Awaitable[None]],  # also queues the pending jobs again
    max_jobs: int = 8,
) -> Worker:
    """An arq worker that runs job keys with `run`, on `context` (closed when it stops)."""

    async def on_startup(ctx: dict[Any, Any]) -> None:
        await on_start()

    async def on_shutdown(ctx: dict[Any, Any]) -> None:
        await context.close()

    async def run_key(ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> None:
        again = await run(str(args[0]))
        if again is not None:
            # Turned away from its full group: the same entry runs again later,
            # so the scheduler's entries for the job are not added beside it.
            raise Retry(defer=again)

    return Worker(
        functions=[
            func(
                run_key,
                name=ARQ_FUNCTION,
                keep_result=0,
                max_tries=WAIT_TRIES,
                timeout=JOB_TIMEOUT_SECONDS,
            )
        ],
        redis_settings=RedisSettings.from_dsn(redis_url),
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        max_jobs=max_jobs,
        poll_delay=0.05,
        keep_result=0,
        handle_signals=True,
    )
