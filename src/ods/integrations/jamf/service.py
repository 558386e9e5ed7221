"""The Jamf Pro integration as an admin manages it: settings, a credentials check,
and reconcile (the drift between this server's packages and Jamf Pro's records)."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from ods.core.context import Context
from ods.core.errors import InvalidField, NotFound
from ods.core.humanize import iso, timestamp
from ods.core.models import JamfRecord, JamfSettings, Package
from ods.core.statuses import Status
from ods.events.log import last_event_id
from ods.integrations.jamf.client import JamfError
from ods.integrations.jamf.schemas import (
    JamfCheck,
    JamfDrift,
    JamfSettingsIn,
    JamfSettingsOut,
    OrphanRecord,
)
from ods.integrations.jamf.sync import (
    SECRET_CONTEXT,
    SETTINGS_ID,
    client_for,
    keep_token,
    listed_stages,
    load_settings,
    note_outcome,
    sync_filename,
)
from ods.jobs.kinds import JamfSync
from ods.jobs.runner import RetryLater, add_job, dispatch

NOT_CONFIGURED = "The Jamf Pro integration is not configured: PUT /api/admin/integrations/jamf."
REPAIR_LIMIT = 500  # records repaired by one request; ask again for the rest


def settings_out(settings: JamfSettings | None, records: int) -> JamfSettingsOut:
    if settings is None:
        return JamfSettingsOut(
            configured=False,
            url=None,
            client_id=None,
            secret_set=False,
            stages=[],
            category=None,
            enabled=False,
            records=records,
            last_sync=None,
            last_sync_ts=None,
            last_outcome=None,
            last_error=None,
        )
    outcome = settings.last_outcome if settings.last_outcome in ("ok", "failed") else None
    return JamfSettingsOut.model_validate(
        {
            "configured": True,
            "url": settings.url,
            "client_id": settings.client_id,
            "secret_set": bool(settings.client_secret_encrypted),
            "stages": listed_stages(settings),
            "category": settings.category,
            "enabled": settings.enabled,
            "records": records,
            "last_sync": iso(settings.last_sync) if settings.last_sync else None,
            "last_sync_ts": timestamp(settings.last_sync) if settings.last_sync else None,
            "last_outcome": outcome,
            "last_error": settings.last_error,
        }
    )


async def get_settings(context: Context) -> JamfSettingsOut:
    async with context.db.session() as session:
        settings = await session.get(JamfSettings, SETTINGS_ID)
        records = await session.scalar(select(func.count()).select_from(JamfRecord)) or 0
    return settings_out(settings, records)


async def put_settings(context: Context, body: JamfSettingsIn) -> JamfSettingsOut:
    """Save the settings. Saving them (again) syncs every package from scratch: the
    cursor starts before the newest event, and a reconcile job would be too slow to
    wait for, so the packages already here are queued by `queue_all`."""
    newest = await last_event_id(context.db)
    async with context.db.transaction() as session:
        settings = await session.get(JamfSettings, SETTINGS_ID)
        if settings is None:
            if body.client_secret is None:
                raise InvalidField("client_secret", "required when the integration is new")
            settings = JamfSettings(id=SETTINGS_ID, last_event_id=newest)
            session.add(settings)
        if body.client_secret is not None:
            settings.client_secret_encrypted = context.cipher.encrypt(
                body.client_secret, SECRET_CONTEXT
            )
        settings.url = body.url
        settings.client_id = body.client_id
        settings.stages = json.dumps(sorted({stage.value for stage in body.stages}))
        settings.category = body.category or None
        settings.enabled = body.enabled
        settings.last_event_id = newest
    await queue_all(context)
    return await get_settings(context)


async def queue_all(context: Context) -> int:
    """Queue the sync of every filename that has or should have a record; how many."""
    settings = await load_settings(context)
    if settings is None or not settings.enabled:
        return 0
    async with context.db.transaction() as session:
        names = set(
            await session.scalars(
                select(Package.filename).where(
                    Package.status == Status.PUBLIC.value,
                    Package.stage.in_(listed_stages(settings)),
                )
            )
        )
        names.update(await session.scalars(select(JamfRecord.filename)))
        keys = [await add_job(session, JamfSync(filename=name)) for name in sorted(names)]
    await dispatch(context.queue, keys)
    return len(keys)


async def _configured(context: Context) -> JamfSettings:
    settings = await load_settings(context)
    if settings is None:
        raise NotFound(NOT_CONFIGURED)
    return settings


async def check(context: Context) -> JamfCheck:
    """Ask Jamf Pro for a new token with the stored credentials, then read one page of
    package records with it: both must work for records to be kept."""
    settings = await _configured(context)
    async with client_for(context, settings) as client:
        try:
            await client.new_token()
            response, _ = await client.call(
                "GET", "/api/v1/packages", ok=(200,), params={"page": 0, "page-size": 1}
            )
        except JamfError as exc:
            return JamfCheck(ok=False, status=exc.status, message=str(exc))
        keep_token(context, settings, client)
    return JamfCheck(
        ok=True,
        status=response.status_code,
        message="Jamf Pro accepted the credentials and lists its package records",
    )


async def reconcile(context: Context, repair: bool) -> JamfDrift:
    """Compare this server's packages at the listed stages with Jamf Pro's records."""
    settings = await _configured(context)
    async with context.db.session() as session:
        packages = {
            filename: (uuid, sha512)
            for filename, uuid, sha512 in (
                await session.execute(
                    select(Package.filename, Package.uuid, Package.sha512).where(
                        Package.status == Status.PUBLIC.value,
                        Package.stage.in_(listed_stages(settings)),
                    )
                )
            ).all()
        }
        mine = {row.filename: row for row in await session.scalars(select(JamfRecord))}
    errors: list[str] = []
    async with client_for(context, settings) as client:
        try:
            records = await client.list_packages()
        except JamfError as exc:
            await note_outcome(context, str(exc))
            return JamfDrift(missing=[], stale=[], orphaned=[], repaired=False, errors=[str(exc)])
        by_name = {record.fileName: record for record in records}
        by_id = {record.id: record for record in records}
        missing = sorted(name for name in packages if name not in by_name)
        stale = sorted(
            name
            for name, (_, sha512) in packages.items()
            if name in by_name
            and (by_name[name].hashType, by_name[name].hashValue) != ("SHA_512", sha512)
        )
        orphaned = [
            OrphanRecord(filename=name, jamf_id=row.jamf_id)
            for name, row in sorted(mine.items())
            if row.made_by_ods and name not in packages and row.jamf_id in by_id
        ]
        if repair:
            todo = [*missing, *stale, *(orphan.filename for orphan in orphaned)]
            for name in todo[:REPAIR_LIMIT]:
                try:
                    await sync_filename(context, settings, client, name, force=True)
                except (JamfError, RetryLater) as exc:
                    errors.append(f"{name}: {exc}")
            if len(todo) > REPAIR_LIMIT:
                errors.append(f"{len(todo) - REPAIR_LIMIT} more left: reconcile again")
            await note_outcome(context, errors[0] if errors else None)
        keep_token(context, settings, client)
    return JamfDrift(
        missing=missing, stale=stale, orphaned=orphaned, repaired=repair, errors=errors
    )
