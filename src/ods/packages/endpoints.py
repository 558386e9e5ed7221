"""Packages: upload, list, look up, delete, change stage."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Query, Request, Response
from pydantic import BeforeValidator
from starlette.requests import ClientDisconnect

from ods.core.db import MAX_ROW_ID
from ods.core.errors import InvalidField, InvalidInput
from ods.core.stages import Stage
from ods.core.statuses import Status
from ods.packages import retry, service, views
from ods.packages.schemas import PackageDetail, PackageList, PackageOut, StageChange, UploadResult
from ods.web.deps import Admin, ContextDep, PackageManager, admin_router
from ods.web.errors import ErrorBody

router = admin_router("packages")

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "stage": {"type": "string", "enum": ["Dev", "Test", "Prod"]},
                        "replace": {
                            "type": "boolean",
                            "default": False,
                            "description": "true or false",
                        },
                    },
                },
                "example": {"file": "NoMAD.pkg", "stage": "Prod"},
            }
        },
    }
}

UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "Same filename, other content, no replace"},
    413: {"model": ErrorBody, "description": "Larger than ODS_MAX_UPLOAD_SIZE"},
}


async def _upload(
    request: Request,
    context: ContextDep,
    principal: PackageManager,
    stage: Stage | None,
    replace: bool,
) -> UploadResult:
    try:
        return await service.upload_package(
            context,
            request.stream(),
            content_type=request.headers.get("content-type"),
            content_length=request.headers.get("content-length"),
            stage=stage,
            replace=replace,
            actor=principal.username,
        )
    except ClientDisconnect:
        # Nobody reads this answer; it keeps a client hanging up out of the error log.
        raise InvalidInput(
            "The client disconnected before the upload finished; nothing was saved."
        ) from None


StageQuery = Annotated[
    Stage | None, Query(description="Stage, if not sent as a form field. Default Prod.")
]


def _query_flag(value: object) -> object:
    if isinstance(value, str):
        try:
            return service.true_or_false(value)
        except InvalidField:
            raise ValueError("must be true or false") from None
    return value


ReplaceQuery = Annotated[
    bool,
    BeforeValidator(_query_flag),
    Query(description="Replace an existing package of the same filename: true or false."),
]


@router.post(
    "/upload",
    operation_id="upload_package",
    status_code=201,
    openapi_extra=UPLOAD_BODY,
    responses=UPLOAD_ERRORS,
)
async def upload(
    request: Request,
    context: ContextDep,
    principal: PackageManager,
    stage: StageQuery = None,
    replace: ReplaceQuery = False,
) -> UploadResult:
    """Upload a package (multipart `file` and `stage`). It is hashed as it streams."""
    return await _upload(request, context, principal, stage, replace)


@router.post(
    "/packages",
    operation_id="create_package",
    status_code=201,
    openapi_extra=UPLOAD_BODY,
    responses=UPLOAD_ERRORS,
)
async def create_package(
    request: Request,
    context: ContextDep,
    principal: PackageManager,
    stage: StageQuery = None,
    replace: ReplaceQuery = False,
) -> UploadResult:
    """The same as POST /api/admin/upload."""
    return await _upload(request, context, principal, stage, replace)


@router.get(
    "/packages",
    operation_id="list_packages",
    response_model=PackageList,
    responses={200: {"model": PackageList}},
)
async def list_packages(
    context: ContextDep,
    stage: Stage | None = None,
    status: Status | None = None,
    search: Annotated[str | None, Query(max_length=255, description="Part of a filename")] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
) -> Response:
    """All packages (or one page with limit/offset), oldest first."""
    items, total = await views.list_packages(
        context, stage=stage, status=status, search=search, limit=limit, offset=offset
    )
    body = orjson.dumps({"items": items, "total": total}, option=views.LIST_JSON_OPTIONS)
    return Response(content=body, media_type="application/json")


@router.get("/packages/{ref}", operation_id="get_package")
async def get_package(ref: str, context: ContextDep) -> PackageDetail:
    """One package by id or filename, with the digests of its 1 MiB chunks."""
    return await views.get_package(context, ref)


@router.patch("/packages/{ref}", operation_id="change_package_stage")
async def change_stage(
    ref: str, body: StageChange, context: ContextDep, principal: PackageManager
) -> PackageOut:
    """Change a package's stage (promote to Test or Prod, or demote); peers follow."""
    return await service.change_stage(context, ref, body.stage, principal.username)


@router.delete("/packages/{ref}", operation_id="delete_package", status_code=204)
async def delete_package(ref: str, context: ContextDep, principal: PackageManager) -> Response:
    """Delete a package: its row and its published file, here and on every peer."""
    await service.delete_package(context, ref, principal.username)
    return Response(status_code=204)


@router.post(
    "/packages/{ref}/retry",
    operation_id="retry_package",
    responses={409: {"model": ErrorBody, "description": "The package is not Failed"}},
)
async def retry_package(ref: str, context: ContextDep, principal: Admin) -> PackageOut:
    """Fetch a Failed package again now, from the server it came from or any other."""
    return await retry.retry_package(context, ref, principal.username)
