"""Package writes: publish an upload, delete, change stage (`recovery` takes over after a crash).

Each write records the job that tells the mesh in its own transaction
(`ods.jobs.kinds`); the packages feature never calls the mesh itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.disk import check_fits, disk_space, is_disk_full
from ods.core.errors import (
    Conflict,
    InsufficientStorage,
    InvalidField,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ServerMisconfigured,
)
from ods.core.humanize import size_hr, timestamp
from ods.core.models import Chunk, Package, Tombstone, utcnow
from ods.core.stages import Stage
from ods.core.statuses import IN_SHARE, Status
from ods.events.catalogue import (
    DeleteReason,
    PackageDeleted,
    PackageReplaced,
    PackageStageChanged,
    PackageUploaded,
    package_facts,
)
from ods.events.log import record
from ods.jobs import runner as jobs
from ods.jobs.kinds import AnnouncePackage, AnnounceTombstone, JobPayload
from ods.packages.progress import Downloads
from ods.packages.publish import insert_chunks, make_public
from ods.packages.schemas import PackageOut, UploadResult
from ods.packages.upload import UploadForm, UploadParser, multipart_boundary
from ods.packages.views import find, package_dict, upload_result
from ods.packages.withdrawal import apply_stage_rule
from ods.server.identity import get_identity
from ods.trust.keys import SigningKey, signing_key
from ods.trust.make import delete_statement, package_statement, stage_statement
from ods.trust.statements import new_bound_uuid

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)


def parse_stage(value: str) -> Stage:
    try:
        return Stage(value.strip().capitalize())
    except ValueError:
        raise InvalidInput(f"Unknown stage {value!r}; use Dev, Test or Prod.") from None


def true_or_false(value: str) -> bool:
    """`replace` as the schema types it, a boolean: `true` or `false` in any case."""
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise InvalidField("replace", f"must be true or false, not {value[:40]!r}")
    return lowered == "true"


async def _stage_upload(
    session: AsyncSession,
    form: UploadForm,
    upload_uuid: str,
    stage: Stage,
    replace: bool,
    actor: str,
    key: SigningKey,
    uuid_nonce: str | None,
) -> Package:
    """The upload's row, committed as Publishing, with this server's signed statement of it;
    an earlier version it replaces is buried, vouched for by that statement."""
    digests = form.digests
    existing = (
        await session.execute(select(Package).where(Package.filename == form.filename))
    ).scalar_one_or_none()
    if existing is not None and existing.status == Status.PUBLISHING.value:
        raise Conflict(f"{form.filename!r} is being published; try again shortly.")
    # A Failed package serves nothing, so an upload may take its place unasked.
    if existing is not None and not replace and existing.status != Status.FAILED.value:
        raise Conflict(
            f"A package named {form.filename!r} exists with other content; "
            "send replace=true to replace it."
        )
    if existing is not None:
        await session.execute(delete(Chunk).where(Chunk.package_id == existing.id))
        package = existing
        package.replaces = existing.uuid
    else:
        package = Package(filename=form.filename, replaces=None)
        session.add(package)
    package.uuid = upload_uuid
    package.created = utcnow()
    package.file_size = digests.size
    package.sha1 = digests.sha1
    package.sha256 = digests.sha256
    package.sha512 = digests.sha512
    package.stage = stage.value
    package.status = Status.PUBLISHING.value
    package.status_reason = None
    package.origin_iss = key.iss
    package.statement = package_statement(key, package, digests.chunks, uuid_nonce=uuid_nonce)
    package.stage_statement = None
    if package.replaces is not None:
        await bury(session, package.replaces, form.filename, "replaced", package.statement)
    await session.flush()
    await insert_chunks(session, package.id, digests.chunks)
    facts = package_facts(package)
    if package.replaces is None:
        await record(session, PackageUploaded(**facts), actor=actor)
    else:
        await record(session, PackageReplaced(**facts, replaced_uuid=package.replaces), actor=actor)
    return package


async def publish_upload(
    context: Context,
    form: UploadForm,
    upload_uuid: str,
    stage: Stage,
    replace: bool,
    actor: str,
    *,
    uuid_nonce: str | None = None,
) -> UploadResult:
    """Record the staged upload, move it into the share dir, mark it Public, tell the mesh.

    The row is committed as `Publishing` before the rename, so a crash at any
    point is finished by `recovery`; a failure rolls the row back at once
    (`undo_publish`).
    """
    signer = await signing_key(context)
    try:
        async with context.db.transaction() as session:
            existing = (
                await session.execute(select(Package).where(Package.filename == form.filename))
            ).scalar_one_or_none()
            if (
                existing is not None
                and existing.sha256 == form.digests.sha256
                and existing.status == Status.PUBLIC.value
            ):
                # The same file again: nothing changes, but peers that missed it hear again.
                form.staged.unlink(missing_ok=True)
                if existing.sha512 is None:
                    existing.sha512 = form.digests.sha512
                key = await jobs.add_job(session, AnnouncePackage(uuid=existing.uuid))
                unchanged = upload_result(existing, replaced_uuid=None)
            else:
                unchanged = None
                package = await _stage_upload(
                    session, form, upload_uuid, stage, replace, actor, signer, uuid_nonce
                )
                package_id, replaced_uuid = package.id, package.replaces
                created_ts = timestamp(package.created)
    except IntegrityError:
        form.staged.unlink(missing_ok=True)
        raise Conflict(f"A package named {form.filename!r} is being uploaded already.") from None
    except BaseException:
        form.staged.unlink(missing_ok=True)
        raise
    if unchanged is not None:
        await jobs.dispatch(context.queue, [key])
        return unchanged
    announce: list[JobPayload] = [AnnouncePackage(uuid=upload_uuid)]
    if replaced_uuid is not None:
        announce.insert(0, AnnounceTombstone(uuid=replaced_uuid))
    try:
        published = await make_public(
            context,
            package_id,
            form.staged,
            form.filename,
            form.digests.sha1,
            created_ts,
            then=announce,
        )
    except BaseException as exc:
        # Shielded: a client that hangs up must not leave the row Publishing.
        await asyncio.shield(undo_publish(context, package_id, form.staged, exc))
        if isinstance(exc, OSError):
            raise ServerMisconfigured(
                f"{form.filename!r} could not be moved into the share dir "
                f"({exc.strerror or exc}); fix that and upload it again."
            ) from None
        raise
    return upload_result(published, replaced_uuid=replaced_uuid)


async def undo_publish(
    context: Context, package_id: int, staged: Path, error: BaseException
) -> None:
    """A publish that failed after its row was written: the row leaves Publishing at once.

    While the file is still staged, the version is marked Failed with the
    reason (an upload of the same name takes a Failed version's place unasked)
    and the staged file goes. Once it is in the share dir, `recovery` marks it
    Public.
    """
    if not await asyncio.to_thread(staged.exists):
        return
    reason = f"Publishing failed ({error_text(error)}); upload it again."
    try:
        async with context.db.transaction() as session:
            package = await session.get(Package, package_id)
            if package is not None and package.status == Status.PUBLISHING.value:
                package.status = Status.FAILED.value
                package.status_reason = reason
    finally:
        await asyncio.to_thread(staged.unlink, True)
    log.warning("publishing upload %s failed: %s", package_id, error_text(error))


def error_text(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


async def delete_package(
    context: Context,
    ref: str,
    actor: str | None,
    *,
    by_uuid: bool = False,
    reason: DeleteReason = "deleted",
    peer: str | None = None,
    peer_iss: str | None = None,
    announce: bool = True,
    statement: str | None = None,
) -> Package:
    """Delete a package version: its row, its published or half-fetched file.

    A tombstone for the version is recorded in the same transaction, so the
    mesh does not bring it back, with the job that passes it on to the peers
    (unless `announce` is false). `peer` and `peer_iss` name the registered
    server the delete came from, if it came from one, and `statement` is the
    signed statement it came with; a delete made here is signed by this
    server. Returns the deleted row (detached).
    """
    key = await signing_key(context) if statement is None else None
    files = context.files
    trash: Path | None = None
    keys: list[str] = []
    try:
        async with context.db.transaction() as session:
            if by_uuid:
                package = (
                    await session.execute(
                        select(Package).where(Package.uuid == ref).with_for_update()
                    )
                ).scalar_one_or_none()
                if package is None:
                    raise NotFound(f"No package with uuid {ref!r}.")
            else:
                package = await find(session, ref, lock=True)
            if package.status == Status.PUBLISHING.value:
                raise Conflict(f"{package.filename!r} is being published; try again shortly.")
            filename, sha1 = package.filename, package.sha1
            deleted = PackageDeleted(
                **package_facts(package),
                reason=reason,
                peer=peer,
                peer_iss=peer_iss,
            )
            await session.delete(package)
            if key is not None and reason in PROPAGATED:
                statement = delete_statement(key, package.uuid, filename, reason)
            await bury(session, package.uuid, filename, reason, statement)
            await record(session, deleted, actor=actor)
            if announce:
                keys.append(await jobs.add_job(session, AnnounceTombstone(uuid=package.uuid)))
            # Out of the share dir before the commit, so an upload of the same name
            # that publishes right after cannot have its new file removed.
            if package.status in IN_SHARE:
                trash = await files.withdraw(filename, package.uuid, sha1)
    except BaseException:
        if trash is not None:
            await files.publish(trash, filename, sha1)
        raise
    if trash is not None:
        await asyncio.to_thread(trash.unlink, True)
    await asyncio.to_thread(files.download(package.uuid).unlink, True)
    await jobs.dispatch(context.queue, keys)
    return package


PROPAGATED = ("deleted", "replaced")


async def bury(
    session: AsyncSession, uuid: str, filename: str, reason: str, statement: str | None = None
) -> bool:
    """Record that a version is gone for good. False if it was recorded already.

    A delete or replacement the mesh is told of carries the signed statement
    that vouches for it; a version set aside here (`superseded`) needs none.
    """
    if await session.get(Tombstone, uuid) is not None:
        return False
    session.add(Tombstone(uuid=uuid, filename=filename, reason=reason, statement=statement))
    return True


async def change_stage(context: Context, ref: str, stage: Stage, actor: str) -> PackageOut:
    """Move a package to another stage, signed by this server; a Public one is announced,
    so peers follow."""
    key = await signing_key(context)
    me = await get_identity(context.db, context.cipher)
    keys = []
    async with context.db.transaction() as session:
        package = await find(session, ref, lock=True)
        previous = package.stage
        if previous != stage.value:
            package.stage = stage.value
            package.stage_statement = stage_statement(key, package.uuid, stage)
            await record(
                session,
                PackageStageChanged(**package_facts(package), previous_stage=Stage(previous)),
                actor=actor,
            )
            withdrawn_or_back = apply_stage_rule(package, me.stage, context.iss)
            if withdrawn_or_back is not None:
                await record(session, withdrawn_or_back, actor=actor)
        if package.status in IN_SHARE:
            keys.append(await jobs.add_job(session, AnnouncePackage(uuid=package.uuid)))
        changed = PackageOut.model_validate(package_dict(package, context.part(Downloads)))
    await jobs.dispatch(context.queue, keys)
    return changed


async def upload_package(
    context: Context,
    stream: AsyncIterator[bytes],
    *,
    content_type: str | None,
    content_length: str | None,
    stage: Stage | None,
    replace: bool,
    actor: str,
) -> UploadResult:
    """Stream a multipart upload into staging, hashing as it goes, then publish it."""
    files, max_size = context.files, context.settings.max_upload_size
    boundary = multipart_boundary(content_type)
    if content_length and content_length.isdigit() and int(content_length) > max_size + 64 * 1024:
        raise PayloadTooLarge(
            f"The upload ({content_length} bytes) is larger than the limit of {max_size} bytes "
            "(ODS_MAX_UPLOAD_SIZE)."
        )
    if content_length and content_length.isdigit():
        check_fits(context.settings, int(content_length), "The upload")
    upload_uuid, uuid_nonce = new_bound_uuid(context.iss)

    def check_field(name: str, value: str) -> None:
        if name == "stage":
            parse_stage(value)
        elif name == "replace":
            true_or_false(value)

    parser = UploadParser(boundary, lambda: files.upload(upload_uuid), max_size, check_field)
    try:
        form = await parser.feed(stream)
        try:
            if "stage" in form.fields:
                stage = parse_stage(form.fields["stage"])
            if "replace" in form.fields:
                replace = replace or true_or_false(form.fields["replace"])
        except BaseException:
            form.staged.unlink(missing_ok=True)
            raise
        return await publish_upload(
            context, form, upload_uuid, stage or Stage.PROD, replace, actor, uuid_nonce=uuid_nonce
        )
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        # The parser and publish_upload have removed the partial file already.
        await asyncio.to_thread(files.upload(upload_uuid).unlink, True)
        space = disk_space(context.settings)
        log.warning(
            "upload refused: the disk is full (%s free, ODS_MIN_FREE_SPACE %s): %s",
            size_hr(space.free),
            size_hr(space.reserve),
            exc,
        )
        raise InsufficientStorage(
            "The server's disk filled up during the upload; nothing was saved. "
            "Free space on the server's disk and upload again.",
            details=space.details(parser.received),
        ) from None
