"""`ods worker`: an arq worker that runs the same jobs `ods serve` runs in-process."""

from __future__ import annotations

import logging
from typing import Any

from arq import Worker
from arq.connections import RedisSettings
from arq.worker import func

from ods.core.config import ConfigError, Settings
from ods.core.context import Context
from ods.jobs.queue import ARQ_FUNCTION
from ods.jobs.runner import resume_jobs, run_job
from ods.mesh import outbound, reconcile, tombstones
from ods.mesh.inbound import download

log = logging.getLogger(__name__)

# Importing these registers their job kinds.
JOB_MODULES = (download, outbound, reconcile, tombstones)
JOB_TIMEOUT_SECONDS = 6 * 3600


def build_worker(settings: Settings, *, max_jobs: int = 8) -> Worker:
    if not settings.redis_url:
        raise ConfigError(
            "REDIS_URL: ods worker takes jobs from Redis; without REDIS_URL, "
            "ods serve runs them itself"
        )
    from ods.app import start

    context = Context.from_settings(settings)

    async def on_startup(ctx: dict[Any, Any]) -> None:
        await start(context)
        resumed = await resume_jobs(context, reclaim_all_running=False)
        log.info("worker ready; %d pending job(s) queued again", resumed)

    async def on_shutdown(ctx: dict[Any, Any]) -> None:
        await context.close()

    async def run(ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> None:
        await run_job(context, str(args[0]))

    return Worker(
        functions=[
            func(run, name=ARQ_FUNCTION, keep_result=0, max_tries=1, timeout=JOB_TIMEOUT_SECONDS)
        ],
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        max_jobs=max_jobs,
        poll_delay=0.05,
        keep_result=0,
        handle_signals=True,
    )
