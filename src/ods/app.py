"""The application factory. The lifespan opens and closes every resource."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import ods
from ods import lifecycle
from ods.accounts import endpoints as auth_endpoints
from ods.accounts import user_endpoints
from ods.core.config import Settings
from ods.core.metrics import Metrics
from ods.events import endpoints as event_endpoints
from ods.integrations.jamf import endpoints as jamf_endpoints
from ods.integrations.jamf.dispatch import JamfDispatcher
from ods.jobs.queue import InProcessQueue
from ods.mesh import admin_endpoints as mesh_endpoints
from ods.mesh import peer_endpoints
from ods.mesh.scheduler import Scheduler
from ods.notifications.email import endpoints as email_endpoints
from ods.notifications.email.loop import Mailer
from ods.notifications.webhooks import endpoints as webhook_endpoints
from ods.notifications.webhooks.dispatch import Dispatcher
from ods.packages import endpoints as package_endpoints
from ods.packages import share
from ods.packages.fast_downloads import FastDownloads
from ods.packages.sha512 import Sha512Backfill
from ods.server import endpoints as server_endpoints
from ods.trust import endpoints as trust_endpoints
from ods.web import console, health
from ods.web.errors import UnexpectedErrors, install_error_handlers
from ods.web.limits import RATE_WINDOW_SECONDS, BodyRules, RequestLimits
from ods.web.metrics import MetricsMiddleware
from ods.web.openapi import install_schema_corrections

# Every router of the app, in the order of the API reference.
ROUTERS = (
    auth_endpoints.router,
    server_endpoints.router,
    event_endpoints.router,
    package_endpoints.router,
    mesh_endpoints.router,
    user_endpoints.router,
    peer_endpoints.router,
    trust_endpoints.router,
    webhook_endpoints.router,
    email_endpoints.router,
    jamf_endpoints.router,
    share.router,
    health.router,
)

log = logging.getLogger(__name__)


DESCRIPTION = """\
The admin API of ODS, the Open Distribution Server. Log in with
`POST /api/auth/login`, then send `Authorization: Bearer <token>`.
Every error answers with the same JSON shape: `{"error", "message", "details"}`.
"""


def create_app(settings: Settings) -> FastAPI:
    """The app. `app.state.stopping` is set when the server begins to shut down
    (by `ods serve` on SIGTERM/SIGINT, or by the lifespan's end), so that
    streams that never end by themselves close and let the shutdown finish."""
    metrics = Metrics()
    stopping = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = lifecycle.build_context(settings, metrics)
        scheduler = Scheduler(context, settings.reconcile_interval, settings.poll_interval)
        notifications = Dispatcher(context)
        mailer = Mailer(context)
        backfill = Sha512Backfill(context)
        jamf = JamfDispatcher(context)
        try:
            await lifecycle.start(context)
            if isinstance(context.queue, InProcessQueue):
                await lifecycle.resume(context)
            app.state.context = context
            scheduler.start()
            notifications.start()
            mailer.start()
            backfill.start()
            jamf.start()
            yield
        finally:
            stopping.set()
            await jamf.stop()
            await backfill.stop()
            await mailer.stop()
            await notifications.stop()
            await scheduler.stop()
            await context.close()

    app = FastAPI(
        title="ODS admin API",
        version=ods.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # The console serves /docs from this server, not from a CDN; no /redoc.
        docs_url=None,
        redoc_url=None,
    )
    app.state.stopping = stopping
    install_error_handlers(app)
    install_schema_corrections(
        app,
        share_requires_login=settings.share_requires_login,
        jamf_token=settings.jamf_jwt_public_key is not None,
    )
    rules = BodyRules(
        max_upload=settings.max_upload_size,
        min_rate=settings.request_min_rate,
        window=RATE_WINDOW_SECONDS,
        stall=settings.request_stall_seconds,
    )
    app.add_middleware(RequestLimits, rules=rules)
    jamf_downloads = f"/{settings.jamf_share_name}/Packages/"
    app.add_middleware(FastDownloads, prefixes=("/share/", jamf_downloads))
    # Inside the metrics, so that its 500s are counted; outside every other layer.
    app.add_middleware(UnexpectedErrors)
    app.add_middleware(MetricsMiddleware, metrics=metrics, downloads=("/share/", jamf_downloads))
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(share.jamf_router(settings.jamf_share_name))
    console.mount(app)
    return app
