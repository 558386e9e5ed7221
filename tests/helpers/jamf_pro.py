"""A stand-in Jamf Pro on loopback: the part of its API that package records use.

It runs a `ThreadingHTTPServer` in a thread of its own, so the server under
test (in-process or a real `ods serve`) talks to it over TCP. It answers the
way the Jamf Pro API reference describes (v11.x):

- `POST /api/oauth/token`, form-encoded `client_id`, `client_secret`,
  `grant_type=client_credentials` → `{"access_token", "token_type": "Bearer",
  "expires_in", "scope"}`; anything else 400 (`invalid_request`,
  `unsupported_grant_type`) or 401 (`invalid_client`).
- `GET /api/v1/packages` (`page`, `page-size`, `sort`, an RSQL `filter` of the
  form `field=="value"`) → `{"totalCount", "results"}`.
- `POST /api/v1/packages` → 201 `{"id", "href"}`; `GET`, `PUT` (200 with the
  record) and `DELETE` (204) of `/api/v1/packages/{id}`; 404 for an unknown id.
- `GET /api/v1/categories` with a filter on `name`.

It refuses what a real one refuses: a missing or expired bearer token (401),
a body that is not `application/json` (415), a record without one of the
required fields or with a field of the wrong type (400, with Jamf Pro's error
shape `{"httpStatus", "errors": [{"code", "field", "description", "id"}]}`),
a second record of one fileName (409 in Jamf Pro 11's wording: "DUPLICATE_FIELD").
It records every request, can answer 503 to everything (`down`), give raw
answers of a test's choosing (`forced`: hostile or malformed ones), and can
make every token issued so far expire (`expire_tokens`).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

REQUIRED: dict[str, type | tuple[type, ...]] = {
    "packageName": str,
    "fileName": str,
    "categoryId": str,
    "priority": int,
    "fillUserTemplate": bool,
    "rebootRequired": bool,
    "osInstall": bool,
    "suppressUpdates": bool,
    "suppressFromDock": bool,
    "suppressEula": bool,
    "suppressRegistration": bool,
}
OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "info": str,
    "notes": str,
    "osRequirements": str,
    "fillExistingUsers": bool,
    "swu": bool,
    "selfHealNotify": bool,
    "selfHealingAction": str,
    "serialNumber": str,
    "parentPackageId": str,
    "basePath": str,
    "ignoreConflicts": bool,
    "installLanguage": str,
    "md5": str,
    "sha256": str,
    "hashType": str,
    "hashValue": str,
    "osInstallerVersion": str,
    "manifest": str,
    "manifestFileName": str,
    "format": str,
    # Read-only: sent back on PUT as GET gave them, ignored.
    "indexed": bool,
    "cloudTransferStatus": str,
    "size": str,
}
HASH_TYPES = {"MD5", "SHA_512"}
FILTER = re.compile(r'^(\w+)=="((?:[^"\\]|\\.)*)"$')


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class JamfPro:
    client_id: str = "ods-client"
    client_secret: str = "s3cret"
    token_lifetime: int = 300
    categories: dict[str, str] = field(default_factory=lambda: {"5": "Apps"})
    packages: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    down: bool = False
    # Raw answers (status, body, content type) given instead of the API's, one per request.
    forced: list[tuple[int, bytes, str]] = field(default_factory=list)
    url: str = ""
    _tokens: dict[str, float] = field(default_factory=dict)
    _next_id: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- what tests look at and change ----------------------------------------------

    def add_record(self, filename: str, **fields: Any) -> str:
        """A record made by someone else (an admin in Jamf Pro's console)."""
        with self._lock:
            return self._store(
                {name: False for name, kind in REQUIRED.items() if kind is bool}
                | {"packageName": filename, "fileName": filename, "categoryId": "-1"}
                | {"priority": 10}
                | fields
            )

    def by_filename(self, filename: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(p) for p in self.packages.values() if p["fileName"] == filename]

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    def calls(self, method: str, prefix: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def token_requests(self) -> int:
        return len(self.calls("POST", "/api/oauth/token"))

    # --- the server's side ---------------------------------------------------------

    def _store(self, record: dict[str, Any], jamf_id: str | None = None) -> str:
        if jamf_id is None:
            jamf_id = str(self._next_id)
            self._next_id += 1
        self.packages[jamf_id] = (
            {name: None for name in OPTIONAL}
            | {"indexed": False, "cloudTransferStatus": "NONE", "size": None}
            | record
            | {"id": jamf_id}
        )
        return jamf_id

    def issue_token(self) -> str:
        token = secrets.token_urlsafe(24)
        self._tokens[token] = time.monotonic() + self.token_lifetime
        return token

    def token_ok(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        until = self._tokens.get(header.removeprefix("Bearer "))
        return until is not None and until > time.monotonic()


def _error(
    status: int, code: str, description: str, field_name: str | None = None
) -> tuple[int, Any]:
    return status, {
        "httpStatus": status,
        "errors": [{"code": code, "field": field_name, "description": description, "id": "0"}],
    }


def check_record(body: Any, *, partial_ok: bool = False) -> tuple[int, Any] | None:
    """Jamf Pro's answer to a bad record, or None when the record is acceptable."""
    if not isinstance(body, dict):
        return _error(400, "INVALID_FIELD", "the body must be a package object")
    known = REQUIRED | OPTIONAL | {"id": str}
    for name, value in body.items():
        if name not in known:
            continue  # Jamf Pro ignores properties it does not know
        kind = known[name]
        wrong = value is not None and (
            not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        )
        if wrong:
            return _error(400, "INVALID_FIELD", f"{name} has the wrong type", name)
    for name in REQUIRED:
        if body.get(name) is None and not partial_ok:
            return _error(400, "INVALID_FIELD", f"{name} is required", name)
    if body.get("hashType") is not None and body["hashType"] not in HASH_TYPES:
        return _error(400, "INVALID_FIELD", "hashType must be MD5 or SHA_512", "hashType")
    if body.get("hashType") == "SHA_512" and not re.fullmatch(
        r"[0-9a-f]{128}", body.get("hashValue") or ""
    ):
        return _error(400, "INVALID_FIELD", "hashValue is not a SHA-512", "hashValue")
    return None


class Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        jamf = self.server.jamf
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            self.command,
            parts.path,
            parse_qs(parts.query),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        with jamf._lock:
            jamf.requests.append(request)
            if jamf.down:
                self._answer(503, {"httpStatus": 503, "errors": []})
                return
            forced = jamf.forced.pop(0) if jamf.forced else None
        if forced is not None:
            status, data, kind = forced
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        with jamf._lock:
            status, answer = self._route(jamf, request)
        self._answer(status, answer)

    def _route(self, jamf: JamfPro, request: Request) -> tuple[int, Any]:
        path, method = request.path, request.method
        if path == "/api/oauth/token":
            return self._token(jamf, request) if method == "POST" else (405, None)
        if not path.startswith("/api/"):
            return 404, None
        if not jamf.token_ok(request.headers.get("authorization")):
            return _error(401, "INVALID_TOKEN", "Unauthorized")
        if method in ("POST", "PUT") and not request.headers.get("content-type", "").startswith(
            "application/json"
        ):
            return _error(415, "UNSUPPORTED_MEDIA_TYPE", "Content type not supported")
        if path == "/api/v1/packages":
            if method == "GET":
                return self._search(request, list(jamf.packages.values()))
            if method == "POST":
                return self._create(jamf, request)
            return 405, None
        if path == "/api/v1/categories" and method == "GET":
            items = [{"id": i, "name": n, "priority": 9} for i, n in jamf.categories.items()]
            return self._search(request, items)
        match = re.fullmatch(r"/api/v1/packages/([^/]+)", path)
        if match is None:
            return 404, None
        jamf_id = match.group(1)
        if jamf_id not in jamf.packages:
            return _error(404, "INVALID_ID", f"Package with id {jamf_id} not found")
        if method == "GET":
            return 200, jamf.packages[jamf_id]
        if method == "DELETE":
            del jamf.packages[jamf_id]
            return 204, None
        if method == "PUT":
            try:
                record = json.loads(request.body)
            except ValueError:
                return _error(400, "INVALID_JSON", "the body is not JSON")
            problem = check_record(record)
            if problem is not None:
                return problem
            record.pop("id", None)
            jamf._store(record, jamf_id)
            return 200, jamf.packages[jamf_id]
        return 405, None

    def _token(self, jamf: JamfPro, request: Request) -> tuple[int, Any]:
        if request.headers.get("content-type", "") != "application/x-www-form-urlencoded":
            return 400, {"error": "invalid_request"}
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if (form.get("client_id"), form.get("client_secret")) != (
            jamf.client_id,
            jamf.client_secret,
        ):
            return 401, {"error": "invalid_client"}
        token = jamf.issue_token()
        return 200, {
            "access_token": token,
            "scope": "api-role:1",
            "token_type": "Bearer",
            "expires_in": jamf.token_lifetime,
        }

    @staticmethod
    def _search(request: Request, items: list[dict[str, Any]]) -> tuple[int, Any]:
        query = {k: v[0] for k, v in request.query.items()}
        try:
            page, size = int(query.get("page", "0")), int(query.get("page-size", "100"))
        except ValueError:
            return _error(400, "INVALID_FIELD", "page and page-size are numbers")
        if "filter" in query:
            match = FILTER.match(query["filter"])
            if match is None:
                return _error(400, "INVALID_RSQL_FILTER", "the filter is not valid RSQL")
            name, value = match.group(1), re.sub(r"\\(.)", r"\1", match.group(2))
            items = [item for item in items if item.get(name) == value]
        items = sorted(items, key=lambda item: int(item["id"]))
        return 200, {"totalCount": len(items), "results": items[page * size : (page + 1) * size]}

    def _create(self, jamf: JamfPro, request: Request) -> tuple[int, Any]:
        try:
            record = json.loads(request.body)
        except ValueError:
            return _error(400, "INVALID_JSON", "the body is not JSON")
        problem = check_record(record)
        if problem is not None:
            return problem
        if any(p["fileName"] == record["fileName"] for p in jamf.packages.values()):
            return _error(409, "DUPLICATE_FIELD", "fileName already exists", "fileName")
        record.pop("id", None)
        jamf_id = jamf._store(record)
        return 201, {"id": jamf_id, "href": f"{jamf.url}/api/v1/packages/{jamf_id}"}

    do_GET = do_POST = do_PUT = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    jamf: JamfPro


@contextmanager
def running_jamf_pro(jamf: JamfPro | None = None) -> Iterator[JamfPro]:
    """A stand-in Jamf Pro listening on 127.0.0.1 for the length of the block."""
    jamf = jamf or JamfPro()
    server = _Server(("127.0.0.1", 0), Handler)
    server.jamf = jamf
    jamf.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield jamf
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
