"""Two versions of one filename: which one wins, and where an incoming version goes.

Every server decides alike, so the mesh converges: a version that replaced
the other where it was uploaded wins quietly; otherwise the newer upload
wins, ties broken by uuid, and the loser is set aside with a `superseded`
tombstone and a `package.conflict` event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.humanize import timestamp
from ods.core.models import Chunk, Package, Tombstone
from ods.core.statuses import Status
from ods.events.catalogue import PackageConflict, PackageDownloading, package_facts
from ods.events.log import record
from ods.jobs import runner as jobs
from ods.mesh.inbound.checks import Vouched
from ods.mesh.protocol.client import PeerLink
from ods.mesh.protocol.wire import PackageManifest
from ods.packages import service

if TYPE_CHECKING:
    from ods.core.context import Context


@dataclass(frozen=True)
class NewRow:
    """The version is fetched into its own Downloading row."""

    package_id: int


@dataclass(frozen=True)
class OverPublic:
    """The version beats the Public one of its filename, which stays served until it is in."""

    replaces_id: int


@dataclass(frozen=True)
class KeepOurs:
    """Not taken: this server's own version of the filename won; peers hear of it."""

    uuid: str


Placement = NewRow | OverPublic | KeepOurs


def version_key(created_ts: int, uuid: str) -> tuple[int, str]:
    """Of two versions of one filename, the greater key wins, on every server alike."""
    return (created_ts, uuid)


def from_timestamp(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None)


def incoming_wins(manifest: PackageManifest, other: Package) -> bool:
    """Whether a version a peer offers beats the other version of its filename here."""
    if manifest.replaces == other.uuid:
        return True
    if other.replaces == manifest.uuid:
        return False
    incoming = version_key(manifest.created_ts, manifest.uuid)
    return incoming > version_key(timestamp(other.created), other.uuid)


def loser_reason(manifest: PackageManifest, other: Package) -> str:
    """A version its successor replaced is `replaced`; a conflict's loser `superseded`."""
    if manifest.replaces == other.uuid or other.replaces == manifest.uuid:
        return "replaced"
    return "superseded"


async def resolve(
    session: AsyncSession,
    link: PeerLink,
    manifest: PackageManifest,
    vouched: Vouched,
    other: Package,
) -> bool:
    """Two versions of one filename met here. True if the incoming one wins.

    A version that replaced the other where it was uploaded wins quietly.
    Otherwise it is a conflict: the newer upload wins everywhere, ties broken
    by uuid, and the loser is set aside with a `superseded` tombstone and a
    `package.conflict` event. An older Public version stays served until the
    winner is in.
    """
    wins = incoming_wins(manifest, other)
    reason = loser_reason(manifest, other)
    if reason == "superseded":
        winner, loser = (manifest.uuid, other.uuid) if wins else (other.uuid, manifest.uuid)
        conflict = PackageConflict(
            **package_facts(other),
            incoming_uuid=manifest.uuid,
            incoming_stage=vouched.stage,
            incoming_file_size=manifest.file_size,
            incoming_sha1=manifest.sha1,
            incoming_sha256=manifest.sha256,
            peer=link.name,
            peer_iss=link.iss,
            winner_uuid=winner,
            loser_uuid=loser,
        )
        await record(session, conflict)
    if not wins:
        # Our version replaced it where it was uploaded: its statement vouches for that.
        statement = other.statement if reason == "replaced" else None
        await service.bury(session, manifest.uuid, manifest.filename, reason, statement)
    return wins


async def place(
    context: Context, manifest: PackageManifest, vouched: Vouched, link: PeerLink
) -> Placement | None:
    """Where this version goes; None when it is not taken (an older or set-aside version)."""
    async with context.db.transaction() as session:
        if await session.get(Tombstone, manifest.uuid) is not None:
            return None
        row = (
            await session.execute(select(Package).where(Package.uuid == manifest.uuid))
        ).scalar_one_or_none()
        if row is not None:
            if (row.sha256, row.file_size) != (manifest.sha256, manifest.file_size):
                raise jobs.RetryLater(
                    f"{link.name} describes {manifest.uuid} differently from the first source"
                )
            if row.status in (Status.FAILED.value, Status.DOWNLOADING.value):
                # Taken up again: no longer Failed, or waiting to be taken over.
                row.status = Status.DOWNLOADING.value
                row.status_reason = None
            row.source_peer_id = link.id
            row.origin_iss = vouched.origin
            row.statement = vouched.statement
            row.sha512 = vouched.sha512 or row.sha512
            return NewRow(row.id)
        other = (
            await session.execute(select(Package).where(Package.filename == manifest.filename))
        ).scalar_one_or_none()
        if other is not None:
            if other.status == Status.PUBLISHING.value:
                raise jobs.RetryLater(f"{manifest.filename} is being published here")
            if not await resolve(session, link, manifest, vouched, other):
                return KeepOurs(other.uuid) if other.status == Status.PUBLIC.value else None
            if other.status == Status.PUBLIC.value:
                return OverPublic(other.id)
            # The loser was not served yet: drop it and fetch the winner in its place.
            await session.delete(other)
            reason = loser_reason(manifest, other)
            statement = vouched.statement if reason == "replaced" else None
            await service.bury(session, other.uuid, other.filename, reason, statement)
            await session.flush()
        package = Package(
            uuid=manifest.uuid,
            filename=manifest.filename,
            file_size=manifest.file_size,
            sha1=manifest.sha1,
            sha256=manifest.sha256,
            sha512=vouched.sha512,
            stage=vouched.stage.value,
            status=Status.DOWNLOADING.value,
            created=from_timestamp(manifest.created_ts),
            origin_iss=vouched.origin,
            replaces=manifest.replaces,
            source_peer_id=link.id,
            chunks_done=0,
            statement=vouched.statement,
            stage_statement=vouched.stage_statement,
        )
        session.add(package)
        await session.flush()
        await insert_chunks(session, package.id, manifest)
        await record(
            session,
            PackageDownloading(**package_facts(package), peer=link.name, peer_iss=link.iss),
        )
        return NewRow(package.id)


async def insert_chunks(session: AsyncSession, package_id: int, manifest: PackageManifest) -> None:
    rows = [
        {"package_id": package_id, "index": c.index, "sha1": c.sha1, "sha256": c.sha256}
        for c in manifest.chunks
    ]
    for start in range(0, len(rows), 1000):
        await session.execute(insert(Chunk), rows[start : start + 1000])


async def claim_for_publishing(
    session: AsyncSession,
    link: PeerLink,
    manifest: PackageManifest,
    vouched: Vouched,
    target: NewRow | OverPublic,
) -> Package | None:
    """The row to publish into, marked Publishing; None if things changed meanwhile."""
    if await session.get(Tombstone, manifest.uuid) is not None:
        return None  # deleted or replaced everywhere while it was on its way
    if isinstance(target, NewRow):
        row = await session.get(Package, target.package_id)
        if row is None or row.uuid != manifest.uuid or row.status != Status.DOWNLOADING.value:
            return None
    else:
        row = await session.get(Package, target.replaces_id)
        if row is None or row.filename != manifest.filename or row.status != Status.PUBLIC.value:
            return None
        if row.uuid != manifest.uuid:
            if not incoming_wins(manifest, row):
                # A newer version got in meanwhile.
                await service.bury(session, manifest.uuid, manifest.filename, "superseded")
                return None
            reason = loser_reason(manifest, row)
            statement = vouched.statement if reason == "replaced" else None
            await service.bury(session, row.uuid, row.filename, reason, statement)
            await session.execute(delete(Chunk).where(Chunk.package_id == row.id))
            row.uuid = manifest.uuid
            row.file_size = manifest.file_size
            row.sha1 = manifest.sha1
            row.sha256 = manifest.sha256
            row.sha512 = vouched.sha512
            row.stage = vouched.stage.value
            row.created = from_timestamp(manifest.created_ts)
            row.origin_iss = vouched.origin
            row.replaces = manifest.replaces
            row.source_peer_id = link.id
            row.statement = vouched.statement
            row.stage_statement = vouched.stage_statement
            await session.flush()
            await insert_chunks(session, row.id, manifest)
    row.status = Status.PUBLISHING.value
    return row
