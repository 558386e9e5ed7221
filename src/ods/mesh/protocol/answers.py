"""Signatures on the answers a peer sends back.

A signed request proves who asks; the answer needs its own proof, or
anyone on the path could rewrite a manifest, an inventory or a server card
on its way back. The answering server signs the status and the SHA-256 of
the body with the link secret, bound to the nonce of the request it
answers: an answer cannot be altered, moved to another request, or replayed.
The label keeps an answer's signature from ever passing for a request's.
"""

from __future__ import annotations

import hashlib
import hmac

ANSWER_SIGNATURE = "X-ODS-Answer-Signature"


def answer_signature(secret: bytes, nonce: str, status: int, body: bytes) -> str:
    message = "\n".join(("ODS1-answer", nonce, str(status), hashlib.sha256(body).hexdigest()))
    return hmac.new(secret, message.encode("utf-8"), hashlib.sha256).hexdigest()


def answer_is_genuine(
    secret: bytes, nonce: str, status: int, body: bytes, claimed: str | None
) -> bool:
    if not claimed:
        return False
    return hmac.compare_digest(answer_signature(secret, nonce, status, body), claimed)
