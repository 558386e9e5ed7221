"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict

from ods.core.disk import disk_space
from ods.core.errors import Unavailable, one_line
from ods.core.humanize import size_hr
from ods.web.deps import ContextDep
from ods.web.errors import ErrorBody

router = APIRouter(tags=["health"])


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str


@router.get("/healthz", operation_id="healthz")
async def healthz() -> Health:
    """200 while the process is up."""
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="readyz",
    responses={
        503: {
            "model": ErrorBody,
            "description": "The database does not answer or refuses writes, or the data disk "
            "has less than ODS_MIN_FREE_SPACE free",
        }
    },
)
async def readyz(context: ContextDep) -> Health:
    """200 only when the database answers and takes writes, and the data disk has room."""
    try:
        await context.db.ping()
    except Exception as exc:
        raise Unavailable(f"The database does not answer: {type(exc).__name__}.") from None
    space = await asyncio.to_thread(disk_space, context.settings)
    if space.low:
        raise Unavailable(
            f"The data disk is full: {size_hr(space.free)} free, less than ODS_MIN_FREE_SPACE "
            f"({size_hr(space.reserve)}). Free space on it.",
            details=space.details(0),
        )
    database = context.db.sqlite_file
    if database is not None:
        # SQLite elsewhere than the data dir: a write that fits in the space its
        # files already hold may still succeed, so look at its disk too.
        space = await asyncio.to_thread(disk_space, context.settings, database.parent)
        if space.low:
            raise Unavailable(
                f"The database refuses writes: its disk is full ({size_hr(space.free)} free, "
                f"less than ODS_MIN_FREE_SPACE ({size_hr(space.reserve)})). Free space on it.",
                details=space.details(0),
            )
    try:
        await context.db.probe_write()
    except Exception as exc:
        raise Unavailable(f"The database refuses writes: {one_line(exc)}") from None
    return Health(status="ready")


@router.get(
    "/metrics",
    operation_id="metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(context: ContextDep) -> Response:
    """Prometheus metrics: requests, bytes served, jobs, queue depth."""
    return Response(context.metrics.render(), media_type=CONTENT_TYPE_LATEST)
