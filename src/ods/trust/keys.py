"""Signing keys: this server's own, and the other servers' keys, pinned on first sight.

A server made by this version of ODS has an iss made from its public key
(`ods.core.crypto.iss_for_key`): a key for it is checked against the iss
itself, so no one can ever sign in its name. A server made before keeps its
random iss; its public key reaches this one at registration (from the
server itself) or with a statement relayed by a peer, and whichever comes
first is pinned. Either way a different key for a known `iss` is refused and
recorded, so a relay can never slip in a key of its own for a server this
one knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ods.core.crypto import is_keyed_iss, iss_for_key
from ods.core.models import OriginKey, utcnow
from ods.events.log import record
from ods.events.trust_events import OriginKeyPinned, OriginKeyRefused
from ods.server.identity import signing_seed
from ods.trust.statements import (
    Statement,
    Untrusted,
    fingerprint,
    public_bytes,
    public_text,
    sign,
)

if TYPE_CHECKING:
    from ods.core.context import Context


@dataclass(frozen=True)
class SigningKey:
    """This server's key, and the iss its statements are signed as."""

    iss: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> str:
        return public_text(self.private)

    def sign(self, statement: Statement) -> str:
        """The signed statement as stored and sent: JSON of a SignedStatement."""
        return sign(self.private, statement).model_dump_json()


class LoadedKey:
    """The signing key, decrypted once per process."""

    def __init__(self) -> None:
        self.private: Ed25519PrivateKey | None = None

    @classmethod
    def for_context(cls, context: Context) -> Self:
        return cls()

    def close(self) -> None:
        self.private = None


async def signing_key(context: Context) -> SigningKey:
    loaded = context.part(LoadedKey)
    if loaded.private is None:
        seed = await signing_seed(context.db, context.cipher)
        loaded.private = Ed25519PrivateKey.from_private_bytes(seed)
    return SigningKey(context.iss, loaded.private)


async def pinned_keys(context: Context) -> list[OriginKey]:
    async with context.db.session() as session:
        return list((await session.execute(select(OriginKey).order_by(OriginKey.iss))).scalars())


async def check_key(context: Context, iss: str, key: str, *, via: str | None) -> None:
    """Pin `key` as the key of `iss` on first sight; Untrusted if another key is pinned,
    or if `iss` is made from a key and `key` is not that one."""
    raw = public_bytes(key)
    if iss == context.iss:
        own = (await signing_key(context)).public
        if key != own:
            await _refused(context, iss, key, fingerprint(own), via)
            raise Untrusted("it claims to come from this server, but is not signed with its key")
        return
    if is_keyed_iss(iss) and iss_for_key(raw) != iss:
        # A server made by this version of ODS: its iss is its key's, so no other key
        # can be its, whether or not this server has seen it before.
        await _refused(context, iss, key, "the key its iss is made from", via)
        raise Untrusted(f"it is signed with key {fingerprint(key)}, which is not the key of {iss}")
    try:
        async with context.db.transaction() as session:
            pinned = await session.get(OriginKey, iss)
            if pinned is None:
                session.add(OriginKey(iss=iss, public_key=key, first_seen=utcnow(), via_iss=via))
                await record(
                    session, OriginKeyPinned(iss=iss, fingerprint=fingerprint(key), via_iss=via)
                )
                return
            known = pinned.public_key
    except IntegrityError:
        # Pinned by another request at the same moment: compare with that one.
        async with context.db.session() as session:
            found = await session.get(OriginKey, iss)
            assert found is not None
            known = found.public_key
    if known == key:
        return
    await _refused(context, iss, key, fingerprint(known), via)
    raise Untrusted(
        f"it is signed with key {fingerprint(key)}, but {fingerprint(known)} is pinned for {iss}"
    )


async def _refused(context: Context, iss: str, key: str, pinned: str, via: str | None) -> None:
    """Record a `trust.key_refused` event: `key` is not the key of `iss` (`pinned` is)."""
    async with context.db.transaction() as session:
        await record(
            session,
            OriginKeyRefused(
                iss=iss, fingerprint=fingerprint(key), pinned_fingerprint=pinned, via_iss=via
            ),
        )


async def forget_key(context: Context, iss: str) -> str | None:
    """Unpin a server's key, so the next one seen is pinned. The key, or None if none was."""
    async with context.db.transaction() as session:
        pinned = await session.get(OriginKey, iss)
        if pinned is None:
            return None
        await session.delete(pinned)
        return pinned.public_key
