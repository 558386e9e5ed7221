"""Links to registered peers: each peer's address, stage and secret, and the health of the link.

A `PeerLink` is what every exchange with a peer needs; links are read from
the database (secrets decrypted with DATABASE_KEY) for each exchange, so
every process of a site sees a change to a peer at once. Every exchange
records its outcome here: a peer that stops answering is marked unreachable
(with a `peer.unreachable` event) and reachable again at its next answer.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING

from sqlalchemy import select

from ods.core.errors import OdsError
from ods.core.models import Peer, utcnow
from ods.core.stages import Stage
from ods.events import catalogue
from ods.events.log import record
from ods.mesh.protocol.client import AnswerRejected, PeerLink, PeerUnreachable
from ods.mesh.state import mesh_state

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)


CONTACT_RESOLUTION = 5.0


def secret_context(iss: str) -> str:
    return f"peer.secret:{iss}"


def link_of(context: Context, peer: Peer) -> PeerLink:
    secret = context.cipher.decrypt(peer.secret_encrypted, secret_context(peer.iss))
    return PeerLink(
        id=peer.id,
        iss=peer.iss,
        name=peer.name,
        url=peer.url,
        stage=Stage(peer.stage),
        firewalled_mode=peer.firewalled_mode,
        secret=bytes.fromhex(secret),
    )


async def links(context: Context) -> list[PeerLink]:
    async with context.db.session() as session:
        peers = (await session.execute(select(Peer).order_by(Peer.id))).scalars().all()
    return [link_of(context, peer) for peer in peers]


async def link_by_iss(context: Context, iss: str) -> PeerLink | None:
    """The peer's link as the database has it now: never a copy kept in this process,
    which another process of the site may have made stale (unregistered, new stage)."""
    async with context.db.session() as session:
        peer = (await session.execute(select(Peer).where(Peer.iss == iss))).scalar_one_or_none()
    return None if peer is None else link_of(context, peer)


def forget_links(context: Context) -> None:
    """Peers changed here: forget what this process remembers of them."""
    mesh_state(context).forget_links()


async def record_contact(context: Context, peer_id: int, error: str | None) -> None:
    """Note a successful exchange with a peer, or the error that stopped one."""
    contacts = mesh_state(context).last_contacts
    now_mono = time.monotonic()
    if error is None:
        last = contacts.get(peer_id)
        if last is not None and now_mono - last < CONTACT_RESOLUTION:
            return
        contacts[peer_id] = now_mono
    else:
        contacts.pop(peer_id, None)
    async with context.db.transaction() as session:
        peer = await session.get(Peer, peer_id)
        if peer is None:
            return
        now = utcnow()
        if error is None:
            if peer.last_contact is None or now - peer.last_contact >= dt.timedelta(seconds=5):
                peer.last_contact = now
            if not peer.reachable:
                peer.reachable = True
                log.info("peer %s is reachable again", peer.name)
                await record(
                    session, catalogue.PeerReachable(iss=peer.iss, name=peer.name, url=peer.url)
                )
            return
        peer.last_error = error
        peer.last_error_at = now
        if peer.reachable:
            peer.reachable = False
            # An expected condition: one line when it starts, no traceback.
            log.warning("peer %s is unreachable: %s", peer.name, error)
            await record(
                session,
                catalogue.PeerUnreachable(iss=peer.iss, name=peer.name, url=peer.url, error=error),
            )


async def record_failure(context: Context, peer_id: int, exc: OdsError) -> None:
    """A failed exchange: a peer that did not answer, or whose answer did not reach this
    server intact, counts as unreachable."""
    failed = isinstance(exc, PeerUnreachable | AnswerRejected)
    await record_contact(context, peer_id, exc.message if failed else None)
