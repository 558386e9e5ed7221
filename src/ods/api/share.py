"""Package downloads: `GET`/`HEAD /share/{filename}` with Range, ETag and Last-Modified."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials

from ods.accounts.service import authenticate
from ods.api.deps import ContextDep, bearer
from ods.errors import ErrorBody, NotFound, Unauthorized
from ods.packages.naming import check_filename
from ods.packages.ranges import check_range
from ods.packages.service import find_public

router = APIRouter(tags=["downloads"])


async def share_access(
    context: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    if not context.settings.share_requires_login:
        return
    if credentials is None:
        raise Unauthorized("Downloads need a token on this server (ODS_SHARE_REQUIRES_LOGIN).")
    await authenticate(context.db, credentials.credentials)


@router.api_route(
    "/share/{filename}",
    methods=["GET", "HEAD"],
    operation_id="download_package",
    dependencies=[Depends(share_access)],
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The package"},
        206: {"description": "The requested range"},
        304: {"description": "Not modified (If-None-Match matched the ETag)"},
        404: {"model": ErrorBody, "description": "No published package of that name"},
        416: {"model": ErrorBody, "description": "Range outside the file"},
    },
)
async def download(
    filename: str,
    request: Request,
    context: ContextDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """A published package. The ETag is the file's SHA1."""
    check_filename(filename)
    package = await find_public(context.db, filename)
    path = context.files.published(filename)
    if package is None or not path.is_file():
        raise NotFound(f"No published package named {filename!r}.")
    etag = f'"{package.sha1}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if if_none_match and etag in (tag.strip() for tag in if_none_match.split(",")):
        return Response(status_code=304, headers=headers)
    if context.settings.accel_redirect:
        headers["X-Accel-Redirect"] = context.settings.accel_redirect + quote(filename)
        return Response(headers=headers, media_type="application/octet-stream")
    check_range(request.headers.get("range"), package.file_size)
    return FileResponse(
        path,
        headers=headers,
        media_type="application/octet-stream",
        filename=filename,
        content_disposition_type="attachment",
    )
