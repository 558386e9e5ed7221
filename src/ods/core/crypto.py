"""Encryption of sensitive database fields with AES-GCM under DATABASE_KEY."""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ods.core.errors import ServerMisconfigured

PREFIX = "v1:"


class FieldCipher:
    """Encrypts short strings into `v1:<base64 nonce|ciphertext>` tokens."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str, context: str) -> str:
        if not token.startswith(PREFIX):
            raise ServerMisconfigured("an encrypted database field has an unknown format")
        raw = base64.b64decode(token[len(PREFIX) :])
        try:
            plain = self._aead.decrypt(raw[:12], raw[12:], context.encode("utf-8"))
        except InvalidTag:
            raise ServerMisconfigured(
                "DATABASE_KEY does not decrypt the database: it is not the key it was created with"
            ) from None
        return plain.decode("utf-8")


# A server's iss made from its signing key has this digit where a random
# (uuid4) iss, as servers made before signing keys have, always has a 4.
KEYED_ISS_MARK = "0"
KEYED_ISS_MARK_AT = 12


def iss_for_key(public_key: bytes) -> str:
    """The iss of a server whose identity is its Ed25519 public key (raw 32 bytes)."""
    digest = hashlib.sha256(b"ods-iss\n" + public_key).hexdigest()[:32]
    return digest[:KEYED_ISS_MARK_AT] + KEYED_ISS_MARK + digest[KEYED_ISS_MARK_AT + 1 :]


def is_keyed_iss(iss: str) -> bool:
    """Whether `iss` was made from a key: then only that key can sign for it."""
    return len(iss) == 32 and iss[KEYED_ISS_MARK_AT] == KEYED_ISS_MARK
