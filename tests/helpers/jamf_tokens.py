"""Tokens as Jamf Pro signs them for downloads, and the forgeries a server must refuse.

Jamf Pro's JSON Web Token configuration holds an RSA private key; the tokens it
appends as `?token=` carry only `{"alg": "RS256"}` in the header and `sub`
`AppManifest`, `iss` `JSS` and `exp` in the payload. The keys are made here,
once per test process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

CLAIMS = {"sub": "AppManifest", "iss": "JSS"}


@cache
def jamf_key(name: str = "jamf") -> RSAPrivateKey:
    """The private key of a Jamf Pro JSON Web Token configuration (one per name)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def private_pem(key: RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")


def claims(expires_in: float = 300, **changes: Any) -> dict[str, Any]:
    """Jamf Pro's claims, expiring `expires_in` seconds from now; a change of None drops it."""
    payload: dict[str, Any] = {**CLAIMS, "exp": int(time.time() + expires_in)}
    payload.update(changes)
    return {name: value for name, value in payload.items() if value is not None}


def jamf_token(key: RSAPrivateKey | None = None, **payload: Any) -> str:
    """A token as Jamf Pro makes it: RS256, header `{"alg": "RS256"}` only."""
    body = payload or claims()
    return jwt.encode(body, key or jamf_key(), algorithm="RS256", headers={"typ": None})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    encoded = [json.dumps(part, separators=(",", ":")).encode() for part in (header, payload)]
    return ".".join(_b64(part) for part in encoded)


def alg_none_token(payload: dict[str, Any] | None = None) -> str:
    """`alg: none`, no signature: what a forger sends hoping nothing is checked."""
    return _unsigned({"alg": "none", "typ": "JWT"}, payload or claims()) + "."


def hs256_with_public_key(public_key_pem: str, payload: dict[str, Any] | None = None) -> str:
    """HS256 with the (public) RSA key's PEM as the HMAC secret: the key-confusion attack
    on a server that lets the token pick its algorithm."""
    signing_input = _unsigned({"alg": "HS256", "typ": "JWT"}, payload or claims())
    mac = hmac.new(public_key_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"
