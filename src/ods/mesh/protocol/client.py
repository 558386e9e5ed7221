"""Signed HTTP requests from this server to a peer, and their answers, bounded and checked.

Every byte of an answer is hostile until checked: an answer is read only up
to a size cap, never decompressed, within one deadline for the whole
exchange, and a successful answer counts only when the peer signed it with
the link secret for this very request (`answers`). A refusal is reported by
its status and, when the body is a well-formed ODS error, its message;
anything else a remote sends is never echoed.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from ods.core.errors import OdsError
from ods.core.stages import Stage
from ods.mesh.protocol import signing
from ods.mesh.protocol.answers import ANSWER_SIGNATURE, answer_is_genuine

PEER_API = "/api/ods"

ANSWER_LIMIT = 1024 * 1024  # a JSON answer: a server card, a package card, a refusal
REQUEST_DEADLINE = 30.0  # connect, send, and read the whole answer
MESSAGE_LIMIT = 300  # characters of a remote error message that are shown

M = TypeVar("M", bound=BaseModel)


class PeerUnreachable(OdsError):
    status_code = 502
    code = "peer_unreachable"


class PeerRefused(OdsError):
    status_code = 502
    code = "peer_refused"


class PeerLacks(PeerRefused):
    """The peer answered 404: it does not have what was asked for."""


class AnswerRejected(OdsError):
    """An answer that cannot be what the peer sent: unsigned, altered, oversize or unreadable."""

    status_code = 502
    code = "peer_answer_rejected"


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


@dataclass(frozen=True)
class PeerAnswer:
    """A peer's answer, read within its limits, with the nonce of the request it answers."""

    status: int
    content: bytes
    signature: str | None
    nonce: str

    def parse(self, model: type[M], peer: str, what: str) -> M:
        """The body as `model`, or AnswerRejected naming the peer and what it sent."""
        try:
            return model.model_validate_json(self.content)
        except ValidationError:
            raise AnswerRejected(f"{peer} sent {what} ODS cannot read") from None


def peer_api_url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + PEER_API + path


def describe_http_error(url: str, exc: httpx.HTTPError) -> str:
    reason = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        reason = "timed out"
    elif isinstance(exc, httpx.ConnectError):
        reason = "cannot connect"
    elif isinstance(exc, httpx.ReadError | httpx.WriteError) or (
        isinstance(exc, httpx.RemoteProtocolError) and "disconnected" in str(exc)
    ):
        # A peer going down closes or resets the connections it had open.
        reason = "the connection closed before it answered"
    elif isinstance(exc, httpx.RemoteProtocolError):
        reason = "it does not speak HTTP/1.1 as expected"
    return f"{url} is unreachable: {reason}"


def printable(text: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text)[:MESSAGE_LIMIT]


def refusal_text(status: int, body: bytes) -> str:
    """`HTTP 404: <message>` when the body is ODS's error shape; otherwise the status alone.

    Nothing else of a remote body is repeated: an admin pointing registration
    at some other service must not read that service's answers through ODS.
    """
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if (
        isinstance(parsed, dict)
        and isinstance(parsed.get("error"), str)
        and isinstance(parsed.get("message"), str)
    ):
        return f"HTTP {status}: {printable(parsed['message'])}"
    return f"HTTP {status} (not an ODS error answer)"


async def exchange(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    name: str,
    content: bytes,
    headers: dict[str, str],
    limit: int,
    deadline: float,
) -> tuple[int, bytes, str | None]:
    """Send one request; status, body and answer signature, read within `limit` and `deadline`."""
    headers = headers | {"Accept-Encoding": "identity"}
    target = httpx.URL(url)
    where = f"{target.scheme}://{target.netloc.decode('ascii')}"
    try:
        async with asyncio.timeout(deadline):
            request = http.build_request(method, url, content=content, headers=headers)
            response = await http.send(request, stream=True)
            try:
                encoding = response.headers.get("content-encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise AnswerRejected(
                        f"{name} answered with {encoding!r} content encoding, which ODS refuses"
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise AnswerRejected(f"{name} announced an answer over {limit} bytes")
                body = bytearray()
                async for part in response.aiter_raw():
                    body += part
                    if len(body) > limit:
                        raise AnswerRejected(f"{name} sent an answer over {limit} bytes")
            finally:
                await response.aclose()
    except TimeoutError:
        raise PeerUnreachable(f"{name} did not answer within {deadline:g} s") from None
    except httpx.HTTPError as exc:
        shown = where if name == where else f"{name} ({where})"
        raise PeerUnreachable(describe_http_error(shown, exc)) from None
    return response.status_code, bytes(body), response.headers.get(ANSWER_SIGNATURE)


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
    name: str | None = None,
    limit: int = ANSWER_LIMIT,
    deadline: float = REQUEST_DEADLINE,
) -> PeerAnswer:
    """Send a signed request to `base_url` + /api/ods + `path`; the answer as read, unchecked."""
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
    status, answer, signature = await exchange(
        http,
        method,
        peer_api_url(base_url, path),
        name=name or base_url,
        content=content,
        headers=headers,
        limit=limit,
        deadline=deadline,
    )
    return PeerAnswer(status, answer, signature, headers[signing.NONCE])


def check_answer(answer: PeerAnswer, secret: bytes, name: str, path: str) -> PeerAnswer:
    """A refusal raises PeerRefused; a success must carry the peer's signature for this request."""
    if answer.status >= 400:
        refusal = PeerLacks if answer.status == 404 else PeerRefused
        raise refusal(f"{name} refused {path}: {refusal_text(answer.status, answer.content)}")
    if not answer_is_genuine(secret, answer.nonce, answer.status, answer.content, answer.signature):
        raise AnswerRejected(
            f"the answer to {path} is not signed by {name} for this request: "
            "it was altered or replayed on the way, or another server answered"
        )
    return answer


class PeerClient:
    """Signed calls to one peer, whose answers are checked before anything acts on them."""

    def __init__(self, http: httpx.AsyncClient, own_iss: str, link: PeerLink) -> None:
        self.http = http
        self.own_iss = own_iss
        self.link = link

    @property
    def name(self) -> str:
        return self.link.name or self.link.url

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        limit: int = ANSWER_LIMIT,
        deadline: float = REQUEST_DEADLINE,
    ) -> PeerAnswer:
        answer = await signed_request(
            self.http,
            own_iss=self.own_iss,
            receiver_iss=self.link.iss,
            secret=self.link.secret,
            base_url=self.link.url,
            method=method,
            path=path,
            body=body,
            name=self.name,
            limit=limit,
            deadline=deadline,
        )
        return check_answer(answer, self.link.secret, self.name, path)


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
