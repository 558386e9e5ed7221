"""Keeping one filename's record in Jamf Pro true to this server: the `jamf_sync` job.

The job compares what should be (a record with the file's SHA-512 while the
package is Public here at one of the listed stages; otherwise no record made
by ODS) with what ODS last did (`jamf_records`), and talks to Jamf Pro only
when they differ. A record found in Jamf Pro that ODS did not make gets the
checksum, but is marked as not ODS's and is never deleted. A failure is
retried with back-off (ODS_JAMF_RETRY_SECONDS, doubling); after the last try
a `jamf.failed` event says why. Jamf Pro is reached only from servers where
the integration is configured and enabled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select

from ods.core.context import Context
from ods.core.models import JamfRecord, JamfSettings, Job, Package, utcnow
from ods.core.sha512 import fill_one
from ods.core.statuses import Status
from ods.events.integration_events import JamfFailed, JamfSynced
from ods.events.log import record
from ods.integrations.jamf.client import JamfClient, JamfError, Token, record_body
from ods.jobs.kinds import JamfSync
from ods.jobs.runner import RetryLater

SECRET_CONTEXT = "jamf-client-secret"  # noqa: S105 - the cipher's context label, not a secret
MAX_WAIT_SECONDS = 3600.0
SETTINGS_ID = 1
PUBLISHING_WAIT = 1.0

Action = Literal["created", "updated", "adopted", "deleted"]


class Tokens:
    """This process's Jamf Pro access token, kept between jobs until it runs out."""

    def __init__(self) -> None:
        self.by_client: dict[tuple[str, str], Token] = {}

    @classmethod
    def for_context(cls, context: Context) -> Tokens:
        return cls()

    def close(self) -> None:
        self.by_client.clear()


@dataclass(frozen=True)
class Wanted:
    """The record a filename should have: which version, with which checksum."""

    uuid: str
    sha512: str


async def load_settings(context: Context) -> JamfSettings | None:
    async with context.db.session() as session:
        return await session.get(JamfSettings, SETTINGS_ID)


def client_for(context: Context, settings: JamfSettings) -> JamfClient:
    """A client for the configured Jamf Pro, sharing this process's cached token."""
    secret = context.cipher.decrypt(settings.client_secret_encrypted, SECRET_CONTEXT)
    tokens = context.part(Tokens)
    key = (settings.url, settings.client_id)
    client = JamfClient(
        settings.url,
        settings.client_id,
        secret,
        timeout=context.settings.jamf_timeout,
        verify=context.ssl_context,
        token=tokens.by_client.get(key),
    )
    return client


def keep_token(context: Context, settings: JamfSettings, client: JamfClient) -> None:
    if client.token is not None:
        context.part(Tokens).by_client[(settings.url, settings.client_id)] = client.token


def listed_stages(settings: JamfSettings) -> list[str]:
    stages = json.loads(settings.stages)
    return [str(stage) for stage in stages] if isinstance(stages, list) else []


async def wanted(context: Context, settings: JamfSettings, filename: str) -> Wanted | None:
    """What Jamf Pro should have for `filename`; None when no record (of ODS's) should be."""
    async with context.db.session() as session:
        package = (
            await session.execute(select(Package).where(Package.filename == filename))
        ).scalar_one_or_none()
    if package is not None and package.status == Status.PUBLISHING.value:
        # An upload (or a replacement) is between its commit and its rename: its event can
        # be read before it is Public. Look again in a moment rather than delete the record.
        raise RetryLater(f"{filename} is being published", defer=PUBLISHING_WAIT)
    if (
        package is None
        or package.status != Status.PUBLIC.value
        or package.stage not in listed_stages(settings)
    ):
        return None
    sha512 = package.sha512 or await fill_one(context, package.id)
    if sha512 is None:
        raise RetryLater(f"the SHA-512 of {filename} is not known yet")
    return Wanted(package.uuid, sha512)


async def _save(
    context: Context, filename: str, want: Wanted | None, jamf_id: str, made: bool
) -> None:
    async with context.db.transaction() as session:
        row = await session.get(JamfRecord, filename)
        if want is None:
            if row is not None:
                await session.delete(row)
            return
        if row is None:
            row = JamfRecord(filename=filename)
            session.add(row)
        row.package_uuid = want.uuid
        row.sha512 = want.sha512
        row.jamf_id = jamf_id
        row.made_by_ods = made
        row.synced = utcnow()


async def sync_filename(
    context: Context,
    settings: JamfSettings,
    client: JamfClient,
    filename: str,
    *,
    force: bool = False,
) -> Action | None:
    """Bring the record of `filename` in line; what was done (None: nothing was needed).
    `force`: talk to Jamf Pro even when ODS's last sync says the record is right (a
    reconcile found otherwise). JamfError when Jamf Pro refuses or cannot be reached."""
    want = await wanted(context, settings, filename)
    async with context.db.session() as session:
        row = await session.get(JamfRecord, filename)
        mine = (row.jamf_id, row.made_by_ods, row.package_uuid, row.sha512) if row else None
    checksum = {"hashType": "SHA_512", "hashValue": want.sha512} if want else {}
    action: Action
    if want is None:
        if mine is None:
            return None
        jamf_id, made, _, _ = mine
        if made:
            await client.delete_package(jamf_id)
        await _save(context, filename, None, jamf_id, made)
        if not made:
            return None  # not ODS's record: forgotten here, left in Jamf Pro
        action = "deleted"
    elif not force and mine is not None and (mine[2], mine[3]) == (want.uuid, want.sha512):
        return None
    elif mine is not None and await client.update_package(mine[0], checksum):
        jamf_id, made = mine[0], mine[1]
        await _save(context, filename, want, jamf_id, made)
        action = "updated"
    else:
        found = await client.find_package(filename)
        if found is not None:
            # Made by someone else (or by ODS, with its row lost): keep its checksum true.
            await client.update_package(found.id, checksum)
            jamf_id, made = found.id, mine is not None and mine[1]
            action = "updated" if made else "adopted"
        else:
            category = await client.category_id(settings.category)
            jamf_id = await client.create_package(record_body(filename, category, want.sha512))
            made, action = True, "created"
        await _save(context, filename, want, jamf_id, made)
    async with context.db.transaction() as session:
        await record(session, JamfSynced(filename=filename, action=action, jamf_id=jamf_id))
    return action


async def note_outcome(context: Context, error: str | None) -> None:
    """The last sync's time, outcome and error, for `GET /api/admin/integrations/jamf`."""
    async with context.db.transaction() as session:
        settings = await session.get(JamfSettings, SETTINGS_ID)
        if settings is not None:
            settings.last_sync = utcnow()
            settings.last_outcome = "ok" if error is None else "failed"
            settings.last_error = error


async def _attempts(context: Context, key: str) -> int:
    async with context.db.session() as session:
        found = await session.scalar(select(Job.attempts).where(Job.key == key))
    return int(found or 1)


async def sync_job(context: Context, payload: JamfSync) -> None:
    settings = await load_settings(context)
    if settings is None or not settings.enabled:
        return
    async with client_for(context, settings) as client:
        try:
            await sync_filename(context, settings, client, payload.filename)
        except JamfError as exc:
            await note_outcome(context, str(exc))
            attempts = await _attempts(context, payload.key())
            base = context.settings.jamf_retry_seconds
            raise RetryLater(
                str(exc), defer=min(MAX_WAIT_SECONDS, base * 2.0 ** max(0, attempts - 1))
            ) from None
        finally:
            keep_token(context, settings, client)
    await note_outcome(context, None)


async def sync_failed(context: Context, payload: JamfSync, reason: str) -> None:
    """The job gave up: say so in the event log."""
    async with context.db.transaction() as session:
        await record(session, JamfFailed(filename=payload.filename, reason=reason[:500]))
