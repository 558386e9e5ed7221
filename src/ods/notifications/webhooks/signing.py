"""The signature of an `ods` delivery: HMAC-SHA256 of the raw body with the webhook's secret."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-ODS-Signature-256"


def signature(secret: str, body: bytes) -> str:
    """The header's value: `sha256=<hex>`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether `header` is the signature of `body` (what a receiver checks)."""
    return hmac.compare_digest(signature(secret, body), header)
