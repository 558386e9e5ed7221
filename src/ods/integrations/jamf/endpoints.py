"""The Jamf Pro integration in the admin API: admins only; the work is in `service`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from ods.integrations.jamf import service
from ods.integrations.jamf.schemas import (
    JamfCheck,
    JamfDrift,
    JamfSettingsIn,
    JamfSettingsOut,
    ReconcileIn,
)
from ods.web.deps import ContextDep, admin
from ods.web.errors import ERROR_RESPONSES, ErrorBody

router = APIRouter(
    prefix="/api/admin/integrations/jamf",
    tags=["integrations"],
    dependencies=[Depends(admin)],
    responses=ERROR_RESPONSES,
)

NO_REPAIR = ReconcileIn()  # no body: only show the drift

NOT_CONFIGURED: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "The integration is not configured"}
}


@router.get("", operation_id="get_jamf_integration")
async def get_jamf_integration(context: ContextDep) -> JamfSettingsOut:
    """The settings (never the secret), how many records ODS keeps, and the last sync's
    time, outcome and error."""
    return await service.get_settings(context)


@router.put("", operation_id="put_jamf_integration")
async def put_jamf_integration(body: JamfSettingsIn, context: ContextDep) -> JamfSettingsOut:
    """Configure the integration. `client_secret` is required the first time and kept
    when left out later. Saving queues a sync of every package at the listed stages."""
    return await service.put_settings(context, body)


@router.post("/check", operation_id="check_jamf_integration", responses=NOT_CONFIGURED)
async def check_jamf_integration(context: ContextDep) -> JamfCheck:
    """Try the stored credentials against Jamf Pro; answers what Jamf Pro said."""
    return await service.check(context)


@router.post("/reconcile", operation_id="reconcile_jamf_integration", responses=NOT_CONFIGURED)
async def reconcile_jamf_integration(
    context: ContextDep, body: ReconcileIn = NO_REPAIR
) -> JamfDrift:
    """Compare the packages at the listed stages with Jamf Pro's records: packages with
    no record, records with another checksum, records ODS made whose package is gone.
    With `{"repair": true}`, repair them and answer what was found."""
    return await service.reconcile(context, body.repair)
