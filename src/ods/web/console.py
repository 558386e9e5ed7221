"""The web console: `index.html` at `/`, its scripts and styles under `/ui/`.

The console is static: it holds no secret and reaches the server only through
the admin API, with the bearer token it keeps in the tab's sessionStorage.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEBUI_DIR = Path(__file__).resolve().parent.parent / "webui"

# Scripts and styles only from this server, no inline script or style
# attribute, nothing framed; fetch() only to this server.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Revalidate (ETag) on every load, so an upgrade's console is seen at once.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.api_route("/", methods=["GET", "HEAD"])
async def console() -> FileResponse:
    """The console's single page."""
    return FileResponse(WEBUI_DIR / "index.html", headers=SECURITY_HEADERS)


@router.api_route("/docs", methods=["GET", "HEAD"])
async def api_reference() -> FileResponse:
    """The API reference (Swagger UI), served from this server under the console's policy."""
    return FileResponse(WEBUI_DIR / "docs.html", headers=SECURITY_HEADERS)


class ConsoleAssets(StaticFiles):
    """The console's modules and styles, with the console's headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/ui", ConsoleAssets(directory=WEBUI_DIR), name="ui")
