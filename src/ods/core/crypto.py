"""Encryption of sensitive database fields with AES-GCM under DATABASE_KEY."""

from __future__ import annotations

import base64
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
