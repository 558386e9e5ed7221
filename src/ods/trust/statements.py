"""Signed statements: what they say, how they are signed, and how a signature is checked.

A statement is JSON, signed as the exact bytes that travel (base64 in
`SignedStatement.payload`), so no one has to rebuild a canonical form to
check it. The signed message starts with a label, so a statement's
signature never passes for anything else signed with the same key. The
signer's public key travels with it; `keys` decides whether that is the key
this server knows for the signer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import uuid as uuidlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ods.core.stages import Stage

LABEL = b"ods-statement-v1\n"
PAYLOAD_LIMIT = 4096  # bytes of one statement, before base64

ISS = r"^[0-9a-f]{32}$"
UUID = r"^[A-Za-z0-9][A-Za-z0-9-]{0,35}$"
SHA1 = r"^[0-9a-f]{40}$"
SHA256 = r"^[0-9a-f]{64}$"
SHA512 = r"^[0-9a-f]{128}$"
NONCE = r"^[0-9a-f]{32}$"
BOUND_UUID_VERSION = 8  # RFC 9562's version for uuids made in a form of one's own


class Untrusted(Exception):
    """A statement that does not hold, and why; the message names no secret."""


class Statement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def signer(self) -> str:
        raise NotImplementedError


class PackageStatement(Statement):
    """The origin's word on a package version: exactly these bytes, under this name."""

    kind: Literal["package"] = "package"
    origin: str = Field(pattern=ISS)
    uuid: str = Field(pattern=UUID)
    filename: str = Field(max_length=255)
    file_size: int = Field(ge=0)
    sha256: str = Field(pattern=SHA256)
    sha1: str = Field(pattern=SHA1)
    # Absent from the statements of servers that did not keep SHA-512 yet.
    sha512: str | None = Field(default=None, pattern=SHA512)
    chunks_sha256: str = Field(pattern=SHA256, description="`chunk_list_digest` of the chunks")
    chunks_sha1: str = Field(pattern=SHA256, description="`chunk_list_digest` of chunk SHA1s")
    stage: Stage
    created_ts: int = Field(ge=0)
    replaces: str | None = Field(default=None, pattern=UUID)
    uuid_nonce: str | None = Field(
        default=None, pattern=NONCE, description="what `uuid` was made from, with `origin`"
    )

    @property
    def signer(self) -> str:
        return self.origin

    @model_validator(mode="after")
    def _uuid_is_the_origins(self) -> PackageStatement:
        problem = uuid_binding_problem(self.uuid, self.origin, self.uuid_nonce)
        if problem is not None:
            raise ValueError(problem)
        return self


class StageStatement(Statement):
    """A server's word that a package version moved to a stage, at a moment."""

    kind: Literal["stage"] = "stage"
    signer_iss: str = Field(pattern=ISS)
    uuid: str = Field(pattern=UUID)
    stage: Stage
    changed_ms: int = Field(ge=0)

    @property
    def signer(self) -> str:
        return self.signer_iss


class DeleteStatement(Statement):
    """A server's word that a package version is gone everywhere."""

    kind: Literal["delete"] = "delete"
    signer_iss: str = Field(pattern=ISS)
    uuid: str = Field(pattern=UUID)
    filename: str = Field(max_length=255)
    reason: Literal["deleted", "replaced"]
    replaced_by: str | None = Field(default=None, pattern=UUID)
    created_ts: int = Field(ge=0)

    @property
    def signer(self) -> str:
        return self.signer_iss


class SignedStatement(BaseModel):
    """A statement as it travels: its bytes, their signature, and the signer's public key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    payload: str = Field(max_length=PAYLOAD_LIMIT * 4 // 3 + 4, description="base64 JSON")
    signature: str = Field(max_length=100, description="base64 Ed25519 signature")
    key: str = Field(max_length=60, description="base64 Ed25519 public key of the signer")


S = TypeVar("S", bound=Statement)


@dataclass(frozen=True)
class Opened(Generic[S]):
    """A statement whose signature verified under `key`; whether `key` is the signer's is
    for `keys.check_key` to say."""

    statement: S
    key: str
    signed: SignedStatement


def bound_uuid(origin: str, nonce: str) -> str:
    """The uuid of a package version made by `origin`: no other origin can make the same.

    It is derived from the origin's iss and a random nonce that travels in the
    origin's statement, so a statement of another origin for this uuid never
    verifies, whichever server sees which statement first.
    """
    digest = hashlib.sha256(
        b"ods-package-uuid\n" + origin.encode("ascii") + b"\n" + bytes.fromhex(nonce)
    )
    value = int.from_bytes(digest.digest()[:16], "big")
    value &= ~(0xF << 76) & ~(0xC << 60)  # RFC 9562: version in bits 48-51, variant 0b10
    value |= (BOUND_UUID_VERSION << 76) | (0x8 << 60)
    return str(uuidlib.UUID(int=value))


def new_bound_uuid(origin: str) -> tuple[str, str]:
    """A fresh uuid for a version `origin` makes, and the nonce its statement carries."""
    nonce = secrets.token_hex(16)
    return bound_uuid(origin, nonce), nonce


def uuid_binding_problem(uuid: str, origin: str, nonce: str | None) -> str | None:
    """Why `uuid` cannot be `origin`'s, or None.

    Uuids of the bound form must come with the nonce they were made from; a
    uuid of another form (versions made before uuids were bound) is taken as
    it is, on the word of the origin that signs it first.
    """
    try:
        parsed: uuidlib.UUID | None = uuidlib.UUID(uuid)
    except ValueError:
        parsed = None
    if nonce is not None:
        if parsed is None or parsed != uuidlib.UUID(bound_uuid(origin, nonce)):
            return f"uuid {uuid} was not made by origin {origin}"
        return None
    if parsed is not None and parsed.version == BOUND_UUID_VERSION:
        return (
            f"uuid {uuid} is bound to its origin, but the statement does not show it is {origin}'s"
        )
    return None


def chunk_list_digest(digests: Iterable[str]) -> str:
    """One SHA-256 for a package's list of chunk digests, in index order."""
    hasher = hashlib.sha256()
    for digest in digests:
        hasher.update(digest.encode("ascii") + b"\n")
    return hasher.hexdigest()


def public_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def fingerprint(key: str) -> str:
    """A short, readable name for a public key: the start of its SHA-256, in groups."""
    digest = hashlib.sha256(key.encode("ascii")).hexdigest()[:24]
    return ":".join(digest[i : i + 4] for i in range(0, 24, 4))


def sign(private: Ed25519PrivateKey, statement: Statement) -> SignedStatement:
    # Unset optional fields are left out, so servers that predate a field still read it.
    payload = statement.model_dump_json(exclude_none=True).encode("utf-8")
    signature = private.sign(LABEL + payload)
    return SignedStatement(
        payload=base64.b64encode(payload).decode("ascii"),
        signature=base64.b64encode(signature).decode("ascii"),
        key=public_text(private),
    )


def _b64(text: str, what: str, size: int | None = None) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Untrusted(f"the statement's {what} is not base64") from None
    if size is not None and len(raw) != size:
        raise Untrusted(f"the statement's {what} is not {size} bytes")
    return raw


def statement_kind(signed: SignedStatement) -> str | None:
    """What kind of statement it says it is (unverified: only to choose how to check it)."""
    try:
        payload = json.loads(_b64(signed.payload, "payload"))
    except (Untrusted, ValueError):
        return None
    kind = payload.get("kind") if isinstance(payload, dict) else None
    return kind if isinstance(kind, str) else None


def public_bytes(key: str) -> bytes:
    """A public key as sent (base64 of 32 bytes), decoded; Untrusted if it is not one."""
    return _b64(key, "key", 32)


def open_statement(signed: SignedStatement, kind: type[S]) -> Opened[S]:
    """The statement, once its signature verifies under the key it carries; else Untrusted."""
    payload = _b64(signed.payload, "payload")
    if len(payload) > PAYLOAD_LIMIT:
        raise Untrusted("the statement is too long")
    key = _b64(signed.key, "key", 32)
    signature = _b64(signed.signature, "signature", 64)
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, LABEL + payload)
    except (InvalidSignature, ValueError):
        raise Untrusted("the statement's signature does not verify") from None
    try:
        statement = kind.model_validate_json(payload)
    except ValidationError as exc:
        raise Untrusted(_invalid(kind, exc)) from None
    return Opened(statement, signed.key, signed)


def _invalid(kind: type[Statement], exc: ValidationError) -> str:
    """Why a signed statement does not hold as `kind`: the rule it breaks when it is one of
    ours (the text names only validated fields), else that it is malformed."""
    for error in exc.errors():
        if error["type"] == "value_error":
            return f"the statement is not a valid {kind.__name__}: {error['ctx']['error']}"
    return f"the statement is not a valid {kind.__name__}"


def load_private(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)
