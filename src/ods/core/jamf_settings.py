"""The checks behind the Jamf Pro settings: the share name and the JWT public key.

`ODS_JAMF_SHARE_NAME` becomes the first segment of a download path
(`/<share name>/Packages/<filename>`), so it must be one plain path segment
that no other route of the server starts with. `ODS_JAMF_JWT_PUBLIC_KEY`
is the RSA public key that checks the tokens Jamf Pro signs; it is read and
checked once, when the settings are loaded, so that a wrong key stops the
server at start rather than refusing every download later.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

SHARE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# First path segments the server (or the shipped Nginx config) already uses.
TAKEN_SEGMENTS = frozenset(
    {
        "api",
        "share",
        "static",
        "ui",
        "docs",
        "redoc",
        "openapi.json",
        "healthz",
        "readyz",
        "metrics",
    }
)
MIN_KEY_BITS = 2048
PEM_START = "-----BEGIN"


def check_share_name(value: str) -> str:
    """The share name, or ValueError saying what is wrong with it."""
    if not SHARE_NAME.fullmatch(value):
        raise ValueError(
            "must be one path segment of letters, digits, '.', '_' or '-', starting with a "
            "letter or digit, at most 64 characters (e.g. CasperShare)"
        )
    if value.lower() in TAKEN_SEGMENTS:
        taken = ", ".join(sorted(TAKEN_SEGMENTS))
        raise ValueError(f"{value!r} is a path the server already uses ({taken})")
    return value


def pem_text(value: str) -> str:
    """The PEM the setting holds: the value itself, or the file it names."""
    text = value.strip()
    if text.startswith(PEM_START):
        return text
    path = Path(text).expanduser()
    try:
        return path.read_text(encoding="ascii")
    except OSError as exc:
        raise ValueError(
            f"is neither a PEM (-----BEGIN PUBLIC KEY-----) nor a readable file: "
            f"{path}: {exc.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a PEM file (not ASCII text)") from None


@lru_cache(maxsize=4)
def jwt_public_key(value: str) -> RSAPublicKey:
    """The RSA public key of the setting (PEM text or a path to a PEM file), from a
    `PUBLIC KEY`, an `RSA PUBLIC KEY` or a certificate; ValueError otherwise."""
    text = pem_text(value)
    if "PRIVATE KEY-----" in text:
        raise ValueError(
            "holds a private key; give the public key only "
            "(openssl rsa -in key.pem -pubout -out jamf-jwt.pub.pem)"
        )
    data = text.encode("ascii", errors="replace")
    key: object
    try:
        if "-----BEGIN CERTIFICATE-----" in text:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = load_pem_public_key(data)
    except ValueError:
        raise ValueError("is not a PEM public key or certificate that can be read") from None
    if not isinstance(key, RSAPublicKey):
        raise ValueError("must be an RSA key: Jamf Pro signs its tokens with RS256")
    if key.key_size < MIN_KEY_BITS:
        raise ValueError(f"is a {key.key_size}-bit RSA key; at least {MIN_KEY_BITS} bits")
    return key
