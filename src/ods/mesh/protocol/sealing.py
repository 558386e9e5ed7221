"""The registration handshake's sealed link secret.

The registering server encrypts a fresh link secret under the other
server's key (AES-GCM), bound to both issuer ids. Only a server that knows
the key can seal it, and only the key's owner can open it: the seal proves
knowledge of the key without sending it.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class SealRejected(Exception):
    pass


def _aad(sender: str, receiver: str) -> bytes:
    return f"ods-link:{sender}:{receiver}".encode()


def decode_key(key: str) -> bytes:
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise SealRejected("the key is not valid base64") from None
    if len(raw) != 32:
        raise SealRejected("the key must decode to 32 bytes")
    return raw


def seal(secret: bytes, receiver_key: str, *, sender: str, receiver: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(decode_key(receiver_key)).encrypt(nonce, secret, _aad(sender, receiver))
    return base64.b64encode(nonce + sealed).decode("ascii")


def unseal(token: str, own_key: str, *, sender: str, receiver: str) -> bytes:
    try:
        raw = base64.b64decode(token, validate=True)
        return AESGCM(decode_key(own_key)).decrypt(raw[:12], raw[12:], _aad(sender, receiver))
    except (binascii.Error, ValueError, InvalidTag):
        raise SealRejected("the link secret was not sealed with this server's key") from None
