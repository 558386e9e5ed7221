"""Signed HTTP requests from this server to a peer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from ods.core.errors import OdsError
from ods.core.stages import Stage
from ods.mesh.protocol import signing

PEER_API = "/api/ods"


class PeerUnreachable(OdsError):
    status_code = 502
    code = "peer_unreachable"


class PeerRefused(OdsError):
    status_code = 502
    code = "peer_refused"


@dataclass(frozen=True)
class PeerLink:
    """A registered peer with its decrypted link secret."""

    id: int
    iss: str
    name: str
    url: str
    stage: Stage
    firewalled_mode: bool
    secret: bytes


def peer_api_url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + PEER_API + path


def describe_http_error(url: str, exc: httpx.HTTPError) -> str:
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        reason = "timed out"
    elif isinstance(exc, httpx.ConnectError):
        reason = f"cannot connect ({reason})"
    return f"{url} is unreachable: {reason}"


def refusal_text(status: int, body: bytes) -> str:
    """`HTTP 404: ...` with the message of ODS's error shape, or the start of the body."""
    try:
        parsed = json.loads(body)
        message = parsed.get("message") if isinstance(parsed, dict) else None
    except ValueError:
        message = None
    text = body[:200].decode("utf-8", "replace")
    return f"HTTP {status}: {message or text or 'no reason given'}"


def refusal(response: httpx.Response) -> str:
    return refusal_text(response.status_code, response.content)


async def signed_request(
    http: httpx.AsyncClient,
    *,
    own_iss: str,
    receiver_iss: str,
    secret: bytes,
    base_url: str,
    method: str,
    path: str,
    body: Any = None,
    time_limit: float | None = None,
) -> httpx.Response:
    """Send a signed request to `base_url` + /api/ods + `path`; raise on transport errors."""
    content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    headers = signing.sign(
        secret,
        method=method,
        target=PEER_API + path,
        body=content,
        sender=own_iss,
        receiver=receiver_iss,
    )
    if body is not None:
        headers["Content-Type"] = "application/json"
    url = peer_api_url(base_url, path)
    try:
        return await http.request(
            method,
            url,
            content=content,
            headers=headers,
            timeout=time_limit if time_limit is not None else http.timeout,
        )
    except httpx.HTTPError as exc:
        raise PeerUnreachable(describe_http_error(base_url, exc)) from None


class PeerClient:
    """Signed calls to one peer."""

    def __init__(self, http: httpx.AsyncClient, own_iss: str, link: PeerLink) -> None:
        self.http = http
        self.own_iss = own_iss
        self.link = link

    async def call(
        self, method: str, path: str, body: Any = None, time_limit: float | None = None
    ) -> httpx.Response:
        response = await signed_request(
            self.http,
            own_iss=self.own_iss,
            receiver_iss=self.link.iss,
            secret=self.link.secret,
            base_url=self.link.url,
            method=method,
            path=path,
            body=body,
            time_limit=time_limit,
        )
        if response.status_code >= 400:
            raise PeerRefused(
                f"{self.link.name or self.link.url} refused {path}: {refusal(response)}"
            )
        return response


class ChunkTooLarge(Exception):
    pass


def signed_get(own_iss: str, link: PeerLink, path: str) -> tuple[str, dict[str, str]]:
    headers = signing.sign(
        link.secret,
        method="GET",
        target=PEER_API + path,
        body=b"",
        sender=own_iss,
        receiver=link.iss,
    )
    return peer_api_url(link.url, path), headers
