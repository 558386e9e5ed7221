"""Package downloads: `GET`/`HEAD /share/{filename}` with Range, ETag and Last-Modified.

The same downloads answer at `/<ODS_JAMF_SHARE_NAME>/Packages/{filename}`, the
path a Jamf Pro file share distribution point sends Macs to (`jamf_router`).
Both ask for the same things first (`share_access`): a login token with
ODS_SHARE_REQUIRES_LOGIN, Jamf Pro's `?token=` with ODS_JAMF_JWT_PUBLIC_KEY.
"""

from __future__ import annotations

import asyncio
import os
from email.utils import formatdate
from pathlib import Path
from stat import S_ISREG
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials
from starlette.types import Receive, Scope, Send

from ods.core.auth import authenticate
from ods.core.errors import NotFound, PasswordChangeRequired, Unauthorized
from ods.core.jamf_settings import jwt_public_key
from ods.packages.fast_downloads import attachment, etag_matches
from ods.packages.jamf_token import check_jamf_token
from ods.packages.naming import check_filename
from ods.packages.ranges import honoured_range
from ods.packages.views import find_public
from ods.web.deps import ContextDep, bearer
from ods.web.errors import ErrorBody

TAG = "downloads"


async def share_access(
    context: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    token: Annotated[
        str | None,
        Query(description="Jamf Pro's JSON Web Token for this download (ODS_JAMF_JWT_PUBLIC_KEY)."),
    ] = None,
) -> None:
    """Checked before anything about the file is looked up or handed to Nginx."""
    if context.settings.jamf_jwt_public_key:
        check_jamf_token(token, jwt_public_key(context.settings.jamf_jwt_public_key))
    if not context.settings.share_requires_login:
        return
    if credentials is None:
        raise Unauthorized("Downloads need a token on this server (ODS_SHARE_REQUIRES_LOGIN).")
    principal = await authenticate(context.db, credentials.credentials)
    if principal.must_change_password:
        raise PasswordChangeRequired(
            "This account must change its password before it can download: "
            "POST /api/auth/password with old_password and new_password."
        )


DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "The package"},
    206: {"description": "The requested range"},
    304: {"description": "Not modified (If-None-Match matched the ETag)"},
    400: {"model": ErrorBody, "description": "Not a valid package filename"},
    401: {
        "model": ErrorBody,
        "description": "No valid login token (ODS_SHARE_REQUIRES_LOGIN) "
        "or Jamf Pro token (ODS_JAMF_JWT_PUBLIC_KEY)",
    },
    403: {
        "model": ErrorBody,
        "description": "The account must change its password first (ODS_SHARE_REQUIRES_LOGIN)",
    },
    404: {"model": ErrorBody, "description": "No published package of that name"},
    416: {"model": ErrorBody, "description": "Range outside the file"},
}


async def download_headers(
    filename: str,
    request: Request,
    context: ContextDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The headers a download would have (size, ETag, Last-Modified), without the body."""
    return await download(filename, request, context, if_none_match)


async def download(
    filename: str,
    request: Request,
    context: ContextDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """A published package. The ETag is the file's SHA1."""
    checked = check_filename(filename)  # NFC; a name that is not safe is 400
    package = await find_public(context.db, checked)
    if package is None and checked != filename:
        # A name stored as sent before names were kept NFC.
        package = await find_public(context.db, filename)
    filename = package.filename if package is not None else checked
    path = context.files.published(filename)
    try:
        stat = await asyncio.to_thread(os.stat, path) if package is not None else None
    except FileNotFoundError:
        stat = None
    if package is None or stat is None or not S_ISREG(stat.st_mode):
        raise NotFound(f"No published package named {filename!r}.")
    etag = f'"{package.sha1}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if if_none_match and etag_matches(if_none_match, package.sha1):
        return Response(status_code=304, headers=headers)
    if context.settings.accel_redirect:
        headers["X-Accel-Redirect"] = context.settings.accel_redirect + quote(filename)
        headers["Content-Disposition"] = attachment(filename)
        return Response(headers=headers, media_type="application/octet-stream")
    last_modified = formatdate(stat.st_mtime, usegmt=True)
    served_range = honoured_range(
        request.headers.get("range"),
        stat.st_size,
        if_range=request.headers.get("if-range"),
        validators=(etag, last_modified),
    )
    return PackageFileResponse(
        path,
        served_range,
        stat_result=stat,
        headers=headers,
        media_type="application/octet-stream",
        filename=filename,
        content_disposition_type="attachment",
    )


def download_router(prefix: str, operation_id: str) -> APIRouter:
    """GET and HEAD of `<prefix>{filename}`: one package download, checks first."""
    router = APIRouter(tags=[TAG])
    for endpoint, method, name in (
        (download_headers, "HEAD", f"{operation_id}_headers"),
        (download, "GET", operation_id),
    ):
        router.add_api_route(
            f"{prefix}{{filename}}",
            endpoint,
            methods=[method],
            operation_id=name,
            dependencies=[Depends(share_access)],
            response_class=FileResponse,
            responses=DOWNLOAD_RESPONSES,
        )
    return router


router = download_router("/share/", "download_package")


def jamf_router(share_name: str) -> APIRouter:
    """The same downloads where Jamf Pro looks: `/<share name>/Packages/{filename}`."""
    return download_router(f"/{share_name}/Packages/", "download_jamf_package")


class PackageFileResponse(FileResponse):
    """Serves the range `honoured_range` settled on, not the raw Range header: Starlette
    would answer a range ODS ignores with a plain-text 400, and a list with one part
    outside the file with 416."""

    def __init__(self, path: Path, served_range: str | None, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.served_range = served_range

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (name, value)
            for name, value in scope["headers"]
            if name.lower() not in (b"range", b"if-range")
        ]
        if self.served_range is not None:
            headers.append((b"range", self.served_range.encode("latin-1")))
        await super().__call__({**scope, "headers": headers}, receive, send)
