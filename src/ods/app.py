"""The application factory. The lifespan opens and closes every resource."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import ods
from ods.accounts import endpoints as auth
from ods.accounts import user_endpoints as users
from ods.accounts.service import ensure_admin
from ods.core import migrate
from ods.core.config import Settings
from ods.core.context import Context
from ods.core.errors import ServerMisconfigured
from ods.core.metrics import Metrics
from ods.events import endpoints as events
from ods.jobs.queue import InProcessQueue
from ods.jobs.runner import resume_jobs
from ods.mesh import admin_endpoints as network
from ods.mesh import peer_endpoints as peer
from ods.mesh.scheduler import Scheduler
from ods.packages import endpoints as packages
from ods.packages import share
from ods.packages.service import recover
from ods.server import endpoints as admin
from ods.server import identity
from ods.web import console as webui
from ods.web import health
from ods.web.errors import install_error_handlers
from ods.web.metrics import MetricsMiddleware

log = logging.getLogger(__name__)


DESCRIPTION = """\
The admin API of ODS, the Open Distribution Server. Log in with
`POST /api/auth/login`, then send `Authorization: Bearer <token>`.
Every error answers with the same JSON shape: `{"error", "message", "details"}`.
"""


async def start(context: Context) -> None:
    """Bring the database up to date and finish work a crash interrupted."""
    if context.db.is_sqlite:
        await migrate.upgrade(context.db.engine)
    elif not await migrate.is_current(context.db.engine):
        raise ServerMisconfigured("The database schema is not current: run `ods db upgrade` first.")
    me = await identity.ensure_identity(context.db, context.cipher)
    context.iss = me.iss
    await ensure_admin(context.db, context.settings.admin_password)
    await recover(context.db, context.files)


def create_app(settings: Settings) -> FastAPI:
    """The app. `app.state.stopping` is set when the server begins to shut down
    (by `ods serve` on SIGTERM/SIGINT, or by the lifespan's end), so that
    streams that never end by themselves close and let the shutdown finish."""
    metrics = Metrics()
    stopping = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = Context.from_settings(settings, metrics)
        scheduler = Scheduler(context, settings.reconcile_interval, settings.poll_interval)
        try:
            await start(context)
            if isinstance(context.queue, InProcessQueue):
                await resume_jobs(context, reclaim_all_running=True)
            app.state.context = context
            scheduler.start()
            yield
        finally:
            stopping.set()
            await scheduler.stop()
            await context.close()

    app = FastAPI(
        title="ODS admin API",
        version=ods.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.stopping = stopping
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    for router in (
        auth.router,
        admin.router,
        events.router,
        packages.router,
        network.router,
        users.router,
    ):
        app.include_router(router)
    app.include_router(peer.router)
    app.include_router(share.router)
    app.include_router(health.router)
    webui.mount(app)
    return app
