"""Jamf Pro's download token: the JSON Web Token Jamf Pro appends as `?token=`.

Jamf Pro signs it with the RSA private key of its JSON Web Token configuration,
RS256 only, with the claims `iss` `JSS`, `sub` `AppManifest` and `exp`
(docs/jamf.md). The algorithm is pinned: a token that names `none`, HS256
(with the public key as its "secret") or anything else is refused before its
signature is looked at. A refusal says briefly why, never the token itself.
"""

from __future__ import annotations

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.exceptions import InvalidSubjectError

from ods.core.errors import Unauthorized

ALGORITHMS = ["RS256"]
ISSUER = "JSS"
SUBJECT = "AppManifest"
# Clocks of Jamf Pro, ODS and the Mac may differ a little.
LEEWAY_SECONDS = 60
MAX_TOKEN_LENGTH = 8192

SETTING = "ODS_JAMF_JWT_PUBLIC_KEY"


def refused(reason: str) -> Unauthorized:
    return Unauthorized(f"Jamf Pro download token {reason} ({SETTING} is set on this server).")


def check_jamf_token(token: str | None, key: RSAPublicKey) -> None:
    """Raise Unauthorized unless `token` is a current token Jamf Pro signed with `key`."""
    if not token:
        raise refused("missing: the download URL needs ?token=<JWT>")
    if len(token) > MAX_TOKEN_LENGTH:
        raise refused("is too long to be one")
    try:
        jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            issuer=ISSUER,
            subject=SUBJECT,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iss", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise refused("has expired") from None
    except jwt.InvalidAlgorithmError:
        raise refused("is not signed with RS256") from None
    except jwt.InvalidSignatureError:
        raise refused("is not signed by this server's Jamf Pro key") from None
    except jwt.MissingRequiredClaimError as exc:
        raise refused(f"lacks the {exc.claim!r} claim") from None
    except jwt.InvalidIssuerError:
        raise refused(f"is not issued by {ISSUER!r}") from None
    except InvalidSubjectError:
        raise refused(f"is not for {SUBJECT!r}") from None
    except jwt.ImmatureSignatureError:
        raise refused("is not valid yet") from None
    except jwt.DecodeError:
        raise refused("is not a JSON Web Token") from None
    except jwt.InvalidTokenError:
        raise refused("is not valid") from None
