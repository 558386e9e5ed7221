"""The one JSON error shape, and the handlers that turn every error into it.

Domain code raises the exceptions of `ods.core.errors`; the handlers here map
them, FastAPI's validation errors and Starlette's HTTP errors to `ErrorBody`,
and the OpenAPI schema is patched to say so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ods.core.errors import OdsError

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """The body of every error response."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "not_found",
                    "message": "No package with id, filename or uuid 'NoMAD.pkg'.",
                    "details": None,
                }
            ]
        }
    )

    error: str = Field(description="Stable machine-readable code, e.g. not_found.")
    message: str = Field(description="What went wrong and what to do about it.")
    details: list[dict[str, Any]] | None = Field(
        default=None, description="Per-field problems for invalid input."
    )


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "invalid_input",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
    507: "insufficient_storage",
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": code.replace("_", " ").capitalize()}
    for status, code in HTTP_CODES.items()
    if status in (400, 401, 403, 404, 422)
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=code, message=message, details=details)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _field_problem(error: Any) -> dict[str, Any]:
    loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
    return {"field": ".".join(loc) or None, "problem": error.get("msg", "invalid")}


async def _ods_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OdsError)
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [_field_problem(error) for error in exc.errors()]
    first = details[0] if details else {"field": None, "problem": "invalid"}
    where = f"{first['field']}: " if first["field"] else ""
    message = f"Invalid request: {where}{first['problem']}."
    return error_response(422, "invalid_input", message, details)


def allowed_methods(request: Request) -> str:
    """Every method of every route at the request's path. Starlette's 405 names only the
    methods of the first route that matched the path, though one path (GET and POST
    /api/admin/packages) is often served by several routes."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if (
            route.methods
            and route.path
            and compile_path(route.path)[0].match(request.scope["path"])
        ):
            methods |= route.methods
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and message == "Not Found":
        message = "No such path. The API is described at /openapi.json."
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
        message = f"{request.method} is not allowed here; this path takes {headers['Allow']}."
    return error_response(exc.status_code, code, message, headers=headers)


class UnexpectedErrors:
    """Answers an unexpected exception with the 500 error body and keeps the connection open.

    Starlette's own 500 handler (`ServerErrorMiddleware`) sends its answer and
    then raises the exception again for the server to log; uvicorn, seeing an
    exception after an answer began, closes the kept-alive connection without
    `Connection: close`, and a client's next call on it is reset. Here the
    exception is logged once and goes no further. Only an answer cut off half
    way still ends the connection (by raising): the client cannot tell where
    its body stopped.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = ended = False

        async def tracking_send(message: Message) -> None:
            nonlocal started, ended
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                ended = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started and not ended:
                raise
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            if not started:
                response = error_response(
                    500,
                    "internal_error",
                    "The server hit an unexpected error; it is in the server log.",
                )
                await response(scope, receive, send)


def _validation_errors_as_error_body(schema: dict[str, Any]) -> None:
    """Point FastAPI's default 422 entries at ErrorBody, the shape the handler really sends."""
    default = "#/components/schemas/HTTPValidationError"
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                media = response.get("content", {}).get("application/json", {})
                if media.get("schema", {}).get("$ref") == default:
                    media["schema"] = {"$ref": "#/components/schemas/ErrorBody"}
                    response["description"] = HTTP_CODES[int(status)].replace("_", " ").capitalize()
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "HTTPValidationError" in components:
        del components["HTTPValidationError"]
        components.pop("ValidationError", None)
        components.setdefault("ErrorBody", ErrorBody.model_json_schema())


def install_error_handlers(app: FastAPI) -> None:
    """Every error answers with ErrorBody, and the OpenAPI schema says so. Unexpected
    exceptions are answered by the `UnexpectedErrors` middleware (`create_app` adds it)."""
    app.add_exception_handler(OdsError, _ods_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    build_schema = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build_schema()
        _validation_errors_as_error_body(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
