"""Signatures on every request between two peers.

Each link between two ODS instances has its own secret. A request carries
the sender's and the receiver's `iss`, a timestamp, a random nonce and the
SHA-256 of its body; the signature is an HMAC-SHA256 with the link secret
over all of them and the method, path and query. The receiver finds the
secret by the sender's `iss` — so one peer can never pass for another — and
refuses a stale or future timestamp and a nonce it has seen before.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

SENDER = "X-ODS-Sender"
RECEIVER = "X-ODS-Receiver"
TIMESTAMP = "X-ODS-Timestamp"
NONCE = "X-ODS-Nonce"
CONTENT_SHA256 = "X-ODS-Content-SHA256"
SIGNATURE = "X-ODS-Signature"

WINDOW_SECONDS = 120


class SignatureRejected(Exception):
    """Why a signed request was refused; the message is safe to send back to the signer."""


class SignatureMismatch(SignatureRejected):
    """The signature is not the one the secret makes: the signer did not prove anything."""


@dataclass(frozen=True)
class SignedRequest:
    """The parts of a request the signature covers."""

    method: str
    target: str
    body_sha256: str
    sender: str
    receiver: str
    timestamp: int
    nonce: str

    def canonical(self) -> bytes:
        parts = (
            "ODS1",
            self.method.upper(),
            self.target,
            self.body_sha256,
            self.sender,
            self.receiver,
            str(self.timestamp),
            self.nonce,
        )
        return "\n".join(parts).encode("utf-8")

    def signature(self, secret: bytes) -> str:
        return hmac.new(secret, self.canonical(), hashlib.sha256).hexdigest()


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def sign(
    secret: bytes,
    *,
    method: str,
    target: str,
    body: bytes,
    sender: str,
    receiver: str,
    now: float | None = None,
) -> dict[str, str]:
    """Headers that sign a request to `target` (path and query, as sent)."""
    request = SignedRequest(
        method=method,
        target=target,
        body_sha256=body_digest(body),
        sender=sender,
        receiver=receiver,
        timestamp=int(time.time() if now is None else now),
        nonce=secrets.token_hex(16),
    )
    return {
        SENDER: request.sender,
        RECEIVER: request.receiver,
        TIMESTAMP: str(request.timestamp),
        NONCE: request.nonce,
        CONTENT_SHA256: request.body_sha256,
        SIGNATURE: request.signature(secret),
    }


def read_signed(
    headers: dict[str, str], *, method: str, target: str, body: bytes
) -> tuple[SignedRequest, str]:
    """Parse the signature headers; the request as received and its claimed signature."""
    lowered = {name.lower(): value for name, value in headers.items()}

    def need(name: str) -> str:
        value = lowered.get(name.lower())
        if not value:
            raise SignatureRejected(f"missing header {name}")
        return value

    try:
        timestamp = int(need(TIMESTAMP))
    except ValueError:
        raise SignatureRejected(f"{TIMESTAMP} is not a Unix time") from None
    claimed_digest = need(CONTENT_SHA256)
    actual_digest = body_digest(body)
    if not hmac.compare_digest(claimed_digest, actual_digest):
        raise SignatureRejected("the body does not match its SHA-256 digest")
    request = SignedRequest(
        method=method,
        target=target,
        body_sha256=actual_digest,
        sender=need(SENDER),
        receiver=need(RECEIVER),
        timestamp=timestamp,
        nonce=need(NONCE),
    )
    if len(request.nonce) < 16 or len(request.nonce) > 64:
        raise SignatureRejected("the nonce must be 16 to 64 characters")
    return request, need(SIGNATURE)


def check_signature(
    request: SignedRequest,
    claimed: str,
    secret: bytes,
    *,
    own_iss: str,
    now: float | None = None,
) -> None:
    """Raise SignatureRejected unless the request is signed with `secret`, for us, and fresh.

    The signature is checked first: only a signer that proved the secret learns
    more than that it failed (SignatureMismatch). The nonce is checked
    separately, against the database.
    """
    if not hmac.compare_digest(request.signature(secret), claimed):
        raise SignatureMismatch("the signature does not match")
    if request.receiver != own_iss:
        raise SignatureRejected("the request is addressed to another server")
    skew = (time.time() if now is None else now) - request.timestamp
    if abs(skew) > WINDOW_SECONDS:
        when = "old" if skew > 0 else "far in the future"
        raise SignatureRejected(
            f"the timestamp is {abs(int(skew))} s {when} (window {WINDOW_SECONDS} s); "
            "check both servers' clocks"
        )
