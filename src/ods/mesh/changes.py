"""An admin's package changes, here and across the mesh.

Each function makes the change on this server (the package service) and
then tells the peers: a new version is announced, a deleted or replaced
version's tombstone is sent, a stage change is announced so the peers that
now accept the package fetch it. The routers call these and nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ods.core.stages import Stage
from ods.mesh import outbound, tombstones
from ods.packages import service
from ods.packages.schemas import PackageOut, Status, UploadResult

if TYPE_CHECKING:
    from ods.core.context import Context


async def upload(
    context: Context,
    body: AsyncIterator[bytes],
    *,
    content_type: str | None,
    content_length: str | None,
    stage: Stage | None,
    replace: bool,
    actor: str,
) -> UploadResult:
    result = await service.upload_package(
        context.db,
        context.files,
        body,
        content_type=content_type,
        content_length=content_length,
        max_size=context.settings.max_upload_size,
        stage=stage,
        replace=replace,
        actor=actor,
    )
    if result.replaced_uuid is not None:
        context.chunk_sources.clear()
        await tombstones.announce(context, result.replaced_uuid)
    await outbound.announce(context, result.uuid)
    return result


async def delete(context: Context, ref: str, actor: str) -> None:
    deleted = await service.delete_package(context.db, context.files, ref, actor)
    context.chunk_sources.clear()
    await tombstones.announce(context, deleted.uuid)


async def change_stage(context: Context, ref: str, stage: Stage, actor: str) -> PackageOut:
    changed = await service.change_stage(context.db, ref, stage, actor)
    if changed.status == Status.PUBLIC:
        await outbound.announce(context, changed.uuid)
    return changed
