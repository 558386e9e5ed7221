"""Checking signed requests from peers: signature, timestamp window, replayed nonces.

Every request under /api/ods/ (but registration, which carries its own proof)
is signed with the secret of the link between the two servers. The secret is
looked up by the sender's iss, so one peer can never pass for another; nonces
are kept in the database, so a restart does not reopen replays.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from ods.core.errors import OdsError
from ods.core.models import Nonce, utcnow
from ods.mesh.peers.links import link_by_iss, record_contact
from ods.mesh.protocol import signing
from ods.mesh.protocol.client import PeerLink

if TYPE_CHECKING:
    from ods.core.context import Context


log = logging.getLogger(__name__)

NONCE_RETENTION = dt.timedelta(seconds=signing.WINDOW_SECONDS * 3)


class SignatureRefused(OdsError):
    status_code = 401
    code = "signature_rejected"


OUTSIDER = "Refused: this request is not signed by a server registered here."


def _outsider(reason: str) -> SignatureRefused:
    log.info("peer request refused: %s", reason)
    return SignatureRefused(OUTSIDER)


async def remember_nonce(context: Context, sender: str, nonce: str) -> None:
    """Refuse a nonce seen before; keep nonces past the signature window."""
    now = utcnow()
    try:
        async with context.db.transaction() as session:
            session.add(Nonce(sender=sender, nonce=nonce, seen=now))
    except IntegrityError:
        raise SignatureRefused("The nonce was used before: a replayed request.") from None


async def prune_nonces(context: Context) -> None:
    """Forget nonces too old to pass the timestamp check anyway."""
    async with context.db.transaction() as session:
        await session.execute(delete(Nonce).where(Nonce.seen < utcnow() - NONCE_RETENTION))


@dataclass(frozen=True)
class AnswerKey:
    """What the answer to a verified request is signed with: the link secret and its nonce."""

    secret: bytes
    nonce: str


@dataclass(frozen=True)
class VerifiedRequest:
    link: PeerLink
    answer_key: AnswerKey


async def verify_peer_request(
    context: Context, headers: Mapping[str, str], method: str, target: str, body: bytes
) -> VerifiedRequest:
    """The registered peer that signed this request, or SignatureRefused.

    Whoever cannot show a registered peer's signature gets one answer,
    whatever went wrong, so outsiders learn nothing (not which iss values are
    registered); the reason goes to the log. A signer that proved its link's
    secret is told exactly what else is wrong (its clock, a replay).
    """
    try:
        parsed, claimed = signing.read_signed(
            dict(headers), method=method, target=target, body=body
        )
    except signing.SignatureRejected as exc:
        raise _outsider(str(exc)) from None
    link = await link_by_iss(context, parsed.sender)
    if link is None:
        raise _outsider(f"no registered peer has iss {parsed.sender}")
    try:
        signing.check_signature(parsed, claimed, link.secret, own_iss=context.iss)
    except signing.SignatureMismatch as exc:
        raise _outsider(f"{exc} (claimed iss {parsed.sender})") from None
    except signing.SignatureRejected as exc:
        raise SignatureRefused(f"Refused: {exc}.") from None
    await remember_nonce(context, parsed.sender, parsed.nonce)
    await record_contact(context, link.id, None)
    return VerifiedRequest(link, AnswerKey(link.secret, parsed.nonce))
