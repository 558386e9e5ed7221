"""Domain exceptions and the one JSON error shape every error answers with.

    OdsError                      400 bad_request
    ├── InvalidInput              400 invalid_input
    │   └── InvalidField          422 invalid_input
    ├── Unauthorized              401 unauthorized
    ├── Forbidden                 403 forbidden
    │   └── PasswordChangeRequired 403 password_change_required
    ├── NotFound                  404 not_found
    ├── Conflict                  409 conflict
    ├── PayloadTooLarge           413 payload_too_large
    ├── RangeNotSatisfiable       416 range_not_satisfiable
    ├── TooManyRequests           429 too_many_requests
    ├── ServerMisconfigured       500 server_misconfigured
    ├── Unavailable               503 unavailable
    └── InsufficientStorage       507 insufficient_storage

Every error body is `{"error": code, "message": text, "details": [...]|null}`;
`ods.web.errors` turns these exceptions into that body. Nothing here imports
the web framework, so domain code can raise them anywhere.
"""

from __future__ import annotations

from typing import Any


class OdsError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers


class InvalidInput(OdsError):
    code = "invalid_input"


class InvalidField(InvalidInput):
    """A field whose value does not match the schema, where the framework cannot check it
    (a multipart form read as it streams): 422, as the framework's own checks answer."""

    status_code = 422

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(
            f"Invalid request: {field}: {problem}.",
            details=[{"field": field, "problem": problem}],
        )


class Unauthorized(OdsError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(OdsError):
    status_code = 403
    code = "forbidden"


class PasswordChangeRequired(Forbidden):
    code = "password_change_required"


class NotFound(OdsError):
    status_code = 404
    code = "not_found"


class Conflict(OdsError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(OdsError):
    status_code = 413
    code = "payload_too_large"


class RangeNotSatisfiable(OdsError):
    status_code = 416
    code = "range_not_satisfiable"


class TooManyRequests(OdsError):
    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class ServerMisconfigured(OdsError):
    status_code = 500
    code = "server_misconfigured"


class Unavailable(OdsError):
    status_code = 503
    code = "unavailable"


class InsufficientStorage(OdsError):
    status_code = 507
    code = "insufficient_storage"


def one_line(exc: BaseException) -> str:
    """The first line of an error's text, for a log line (drivers add SQL and links below)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
