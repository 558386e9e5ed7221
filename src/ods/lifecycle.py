"""Starting and stopping a server or worker: one place for the order of things.

`ods serve` (through the app's lifespan) and `ods worker` both build their
context here, bring the database up to date, finish what a crash
interrupted, and run the same job kinds, listed below.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from arq import Worker

from ods.accounts.service import ensure_admin
from ods.core import migrate
from ods.core.config import ConfigError, Settings
from ods.core.context import Context
from ods.core.errors import ServerMisconfigured
from ods.core.metrics import Metrics
from ods.integrations.jamf import sync as jamf_sync
from ods.jobs import worker
from ods.jobs.kinds import (
    AnnouncePackage,
    AnnounceTombstone,
    DeliverWebhook,
    Fetch,
    Forget,
    JamfSync,
    Notify,
    Reconcile,
)
from ods.jobs.owners import Heartbeat
from ods.jobs.queue import ArqQueue, InProcessQueue
from ods.jobs.registry import JobHandler, JobRegistry
from ods.jobs.runner import run_job
from ods.mesh import outbound, reconcile, takeover, tombstones
from ods.mesh.inbound import download
from ods.notifications.webhooks import delivery as webhook_delivery
from ods.packages.recovery import recover
from ods.packages.statements import sign_unsigned
from ods.packages.version_links import tidy_version_links
from ods.server import identity

log = logging.getLogger(__name__)

JOBS = JobRegistry(
    [
        JobHandler(AnnouncePackage, outbound.announce_job, max_attempts=12),
        JobHandler(Notify, outbound.notify_job, max_attempts=12),
        JobHandler(AnnounceTombstone, tombstones.announce_job, max_attempts=12),
        JobHandler(Forget, tombstones.forget_job, max_attempts=12),
        JobHandler(Fetch, download.fetch_job, max_attempts=8, on_failure=download.mark_failed),
        JobHandler(Reconcile, reconcile.reconcile_job, max_attempts=3),
        # A webhook's job stops by itself when its deliveries are done or given up on.
        JobHandler(DeliverWebhook, webhook_delivery.deliver_job, max_attempts=2**31),
        JobHandler(JamfSync, jamf_sync.sync_job, max_attempts=8, on_failure=jamf_sync.sync_failed),
    ]
)


def job_runner(context: Context) -> Callable[[str], Awaitable[float | None]]:
    """Runs one job by its key on `context`: what both queue backends call."""

    async def run(key: str) -> float | None:
        return await run_job(context, JOBS, key)

    return run


def build_context(settings: Settings, metrics: Metrics | None = None) -> Context:
    """A context whose queue runs jobs in-process, unless REDIS_URL hands them to workers."""
    context = Context.from_settings(settings, metrics)
    if settings.redis_url:
        context.queue = ArqQueue(settings.redis_url)
    else:
        context.queue = InProcessQueue(job_runner(context), settings.job_concurrency)
    context.metrics.watch_queue(context.queue)
    return context


async def start(context: Context, role: str = "serve") -> None:
    """Bring the database up to date, register this process as an owner of work, finish
    what a stopped process left, clear what is left of it."""
    if context.db.is_sqlite:
        await migrate.upgrade(context.db.engine)
    elif not await migrate.is_current(context.db.engine):
        raise ServerMisconfigured("The database schema is not current: run `ods db upgrade` first.")
    me = await identity.ensure_identity(context.db, context.cipher)
    context.iss = me.iss
    await ensure_admin(context.db, context.settings.admin_password)
    await Heartbeat(context, role).start()
    await recover(context)
    await tidy_version_links(context)
    await sign_unsigned(context)
    await download.remove_abandoned_staging(context)


async def resume(context: Context) -> None:
    """Queue pending jobs again, and those of processes that stopped."""
    await takeover.resume(context)


def build_worker(settings: Settings, *, max_jobs: int = 8) -> Worker:
    """`ods worker`: takes jobs from Redis and runs them like `ods serve` would."""
    if not settings.redis_url:
        raise ConfigError(
            "REDIS_URL: ods worker takes jobs from Redis; without REDIS_URL, "
            "ods serve runs them itself"
        )
    # Its job slots are --jobs: the default ODS_PEER_JOB_LIMIT is a quarter of them.
    context = build_context(settings.model_copy(update={"job_concurrency": max_jobs}))

    async def on_start() -> None:
        await start(context, role="worker")
        resumed = await takeover.resume(context)
        log.info("worker ready; %d pending job(s) queued again", resumed.queued)

    return worker.build_worker(
        context, settings.redis_url, run=job_runner(context), on_start=on_start, max_jobs=max_jobs
    )
