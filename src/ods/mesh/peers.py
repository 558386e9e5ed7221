"""Peers: registration handshake, the peer list, and checking signed peer requests."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from ods.core.errors import Conflict, InvalidInput, NotFound, OdsError
from ods.core.humanize import iso, timestamp
from ods.core.models import Job, Nonce, Package, Peer, utcnow
from ods.core.stages import Stage
from ods.events.log import record_event
from ods.mesh.protocol import signing
from ods.mesh.protocol.client import PeerLink, PeerRefused, PeerUnreachable, refusal, signed_request
from ods.mesh.protocol.sealing import SealRejected, decode_key, seal, unseal
from ods.mesh.protocol.wire import PeerOut, PeerRegistration, RegisterRequest, RegistrationAnswer
from ods.packages.schemas import Status
from ods.server.identity import AboutUpdate, Identity, get_identity

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)

NONCE_RETENTION = dt.timedelta(seconds=signing.WINDOW_SECONDS * 3)
CONTACT_RESOLUTION = 5.0


class SignatureRefused(OdsError):
    status_code = 401
    code = "signature_rejected"


def secret_context(iss: str) -> str:
    return f"peer.secret:{iss}"


def registration_proof(secret: bytes, answer: Mapping[str, object]) -> str:
    canonical = json.dumps(dict(answer), sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(secret, b"ods-registered\n" + canonical, hashlib.sha256).hexdigest()


def card_of(me: Identity) -> dict[str, object]:
    return {
        "iss": me.iss,
        "name": me.name,
        "url": me.url,
        "stage": me.stage.value,
        "firewalled_mode": me.firewalled_mode,
    }


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
    cached = context.peer_links.get(iss)
    if cached is not None:
        return cached
    async with context.db.session() as session:
        peer = (await session.execute(select(Peer).where(Peer.iss == iss))).scalar_one_or_none()
    if peer is None:
        return None
    link = link_of(context, peer)
    context.peer_links.put(iss, link)
    return link


def forget_links(context: Context) -> None:
    """Peers changed here: read them from the database again."""
    context.peer_links.clear()
    context.last_contacts.clear()


async def list_peers(context: Context) -> list[PeerOut]:
    async with context.db.session() as session:
        peers = (await session.execute(select(Peer).order_by(Peer.id))).scalars().all()
        counts = await session.execute(
            select(Package.source_peer_id, func.count())
            .where(Package.status == Status.DOWNLOADING.value)
            .group_by(Package.source_peer_id)
        )
        pending: dict[int | None, int] = {peer_id: count for peer_id, count in counts}
        notify_keys = (
            await session.execute(
                select(Job.key).where(Job.kind == "notify", Job.status.in_(("pending", "running")))
            )
        ).scalars()
        outgoing: dict[str, int] = {}
        for key in notify_keys:
            peer_iss = key.rsplit(":", 1)[-1]
            outgoing[peer_iss] = outgoing.get(peer_iss, 0) + 1
    return [
        PeerOut(
            firewalled_mode=peer.firewalled_mode,
            id=peer.id,
            iss=peer.iss,
            name=peer.name,
            registered_on=iso(peer.registered_on),
            registered_on_ts=timestamp(peer.registered_on),
            stage=Stage(peer.stage),
            url=peer.url,
            reachable=peer.reachable,
            last_contact=iso(peer.last_contact) if peer.last_contact else None,
            last_error=peer.last_error,
            pending_from=pending.get(peer.id, 0),
            pending_to=outgoing.get(peer.iss, 0),
        )
        for peer in peers
    ]


def check_peer_url(url: str) -> str:
    checked = AboutUpdate(url=url).url
    if not checked:
        raise InvalidInput("url is required: the other server's address, e.g. http://ods2:8000")
    return checked


async def register(context: Context, request: RegisterRequest, actor: str) -> PeerOut:
    """Register with another ODS: both sides end up storing each other."""
    try:
        url = check_peer_url(request.url)
    except ValidationError:
        raise InvalidInput(f"url {request.url!r} is not an http:// or https:// URL.") from None
    me = await get_identity(context.db, context.cipher)
    if not me.name or not me.url:
        raise InvalidInput(
            "Set this server's name and url first (POST /api/admin/about/update): "
            "the other server uses them to reach this one."
        )
    if request.iss_id == me.iss:
        raise InvalidInput("That is this server's own iss: a server cannot register with itself.")
    try:
        decode_key(request.key)
    except SealRejected as exc:
        raise InvalidInput(f"key is not an ODS key: {exc}.") from None
    existing = await link_by_iss(context, request.iss_id)
    if existing is not None:
        raise Conflict(f"{existing.name or existing.url} is registered already (id {existing.id}).")

    secret = secrets.token_bytes(32)
    registration = PeerRegistration(
        iss=me.iss,
        name=me.name,
        url=me.url,
        stage=me.stage,
        firewalled_mode=me.firewalled_mode,
        sealed_secret=seal(secret, request.key, sender=me.iss, receiver=request.iss_id),
    )
    response = await signed_request(
        context.http,
        own_iss=me.iss,
        receiver_iss=request.iss_id,
        secret=secret,
        base_url=url,
        method="POST",
        path="/register",
        body=registration.model_dump(mode="json"),
    )
    if response.status_code in (401, 403):
        raise InvalidInput(
            f"{url} refused the registration ({refusal(response)}). "
            "Check the iss and key on its About page."
        )
    if response.status_code >= 400:
        raise PeerRefused(f"{url} refused the registration: {refusal(response)}")
    try:
        answer = RegistrationAnswer.model_validate(response.json())
    except (ValueError, ValidationError):
        raise PeerRefused(f"{url} did not answer like an ODS server.") from None
    card = answer.model_dump(mode="json", exclude={"proof"})
    if answer.iss != request.iss_id or not hmac.compare_digest(
        answer.proof, registration_proof(secret, card)
    ):
        raise PeerRefused(f"{url} answered, but not as the server with iss {request.iss_id}.")

    async with context.db.transaction() as session:
        peer = Peer(
            iss=answer.iss,
            name=answer.name,
            url=url,
            stage=answer.stage.value,
            firewalled_mode=answer.firewalled_mode,
            secret_encrypted=context.cipher.encrypt(secret.hex(), secret_context(answer.iss)),
            last_contact=utcnow(),
            reachable=True,
        )
        session.add(peer)
        try:
            await session.flush()
        except IntegrityError:
            raise Conflict(f"{answer.name or url} is registered already.") from None
        await record_event(
            session, "peer.registered", f"Registered with {answer.name} ({url})", actor=actor
        )
    forget_links(context)
    return next(p for p in await list_peers(context) if p.iss == answer.iss)


async def accept_registration(
    context: Context, headers: Mapping[str, str], target: str, body: bytes
) -> RegistrationAnswer:
    """The other side of `register`: open the sealed secret, check the signature, store."""
    me = await get_identity(context.db, context.cipher)
    try:
        registration = PeerRegistration.model_validate_json(body)
    except ValidationError:
        raise InvalidInput("The registration body is not valid.") from None
    if registration.iss == me.iss:
        raise InvalidInput("A server cannot register with itself.")
    try:
        parsed, claimed = signing.read_signed(
            dict(headers), method="POST", target=target, body=body
        )
        if parsed.sender != registration.iss:
            raise signing.SignatureRejected("the sender header differs from the body's iss")
        if parsed.receiver != me.iss:
            raise signing.SignatureRejected(
                "the iss it was sent for belongs to another server, not this one"
            )
        secret = unseal(
            registration.sealed_secret, me.key, sender=registration.iss, receiver=me.iss
        )
        signing.check_signature(parsed, claimed, secret, own_iss=me.iss)
    except SealRejected:
        raise SignatureRefused(
            "The key does not match this server's key; copy it again from its About page."
        ) from None
    except signing.SignatureRejected as exc:
        raise SignatureRefused(f"Registration refused: {exc}.") from None
    await remember_nonce(context, parsed.sender, parsed.nonce)

    async with context.db.transaction() as session:
        peer = (
            await session.execute(select(Peer).where(Peer.iss == registration.iss))
        ).scalar_one_or_none()
        verb = "re-registered" if peer else "registered"
        if peer is None:
            peer = Peer(iss=registration.iss)
            session.add(peer)
        peer.name = registration.name
        peer.url = registration.url
        peer.stage = registration.stage.value
        peer.firewalled_mode = registration.firewalled_mode
        peer.secret_encrypted = context.cipher.encrypt(secret.hex(), secret_context(peer.iss))
        peer.last_contact = utcnow()
        peer.reachable = True
        peer.last_error = None
        await record_event(
            session,
            "peer.registered",
            f"{registration.name} ({registration.url}) {verb} with this server",
        )
    forget_links(context)
    card = card_of(me)
    return RegistrationAnswer.model_validate(card | {"proof": registration_proof(secret, card)})


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


async def verify_peer_request(
    context: Context, headers: Mapping[str, str], method: str, target: str, body: bytes
) -> PeerLink:
    """The registered peer that signed this request, or SignatureRefused with the reason."""
    try:
        parsed, claimed = signing.read_signed(
            dict(headers), method=method, target=target, body=body
        )
    except signing.SignatureRejected as exc:
        raise SignatureRefused(f"Refused: {exc}.") from None
    link = await link_by_iss(context, parsed.sender)
    if link is None:
        raise SignatureRefused(f"Refused: no registered peer has iss {parsed.sender}.")
    try:
        signing.check_signature(parsed, claimed, link.secret, own_iss=context.iss)
    except signing.SignatureRejected as exc:
        raise SignatureRefused(f"Refused: {exc}.") from None
    await remember_nonce(context, parsed.sender, parsed.nonce)
    await record_contact(context, link.id, None)
    return link


async def record_contact(context: Context, peer_id: int, error: str | None) -> None:
    """Note a successful exchange with a peer, or the error that stopped one."""
    now_mono = time.monotonic()
    if error is None:
        last = context.last_contacts.get(peer_id)
        if last is not None and now_mono - last < CONTACT_RESOLUTION:
            return
        context.last_contacts[peer_id] = now_mono
    else:
        context.last_contacts.pop(peer_id, None)
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
                await record_event(session, "peer.reachable", f"{peer.name} is reachable again")
            return
        peer.last_error = error
        peer.last_error_at = now
        if peer.reachable:
            peer.reachable = False
            await record_event(session, "peer.unreachable", f"{peer.name}: {error}")


async def record_failure(context: Context, peer_id: int, exc: OdsError) -> None:
    """A failed exchange: only a peer that did not answer counts as unreachable."""
    await record_contact(
        context, peer_id, exc.message if isinstance(exc, PeerUnreachable) else None
    )


async def unregister(context: Context, peer_id: int, actor: str) -> None:
    """Forget a peer here, and tell it to forget this server (best effort)."""
    async with context.db.session() as session:
        peer = await session.get(Peer, peer_id)
        if peer is None:
            raise NotFound(f"No registered ODS with id {peer_id}.")
        link = link_of(context, peer)
    try:
        await signed_request(
            context.http,
            own_iss=context.iss,
            receiver_iss=link.iss,
            secret=link.secret,
            base_url=link.url,
            method="POST",
            path="/unregister",
            body={},
            time_limit=5.0,
        )
    except OdsError as exc:
        log.info("could not tell %s about the unregistration: %s", link.url, exc.message)
    async with context.db.transaction() as session:
        await session.execute(delete(Peer).where(Peer.id == peer_id))
        await record_event(
            session, "peer.unregistered", f"Unregistered {link.name} ({link.url})", actor=actor
        )
    forget_links(context)


async def accept_unregistration(context: Context, link: PeerLink) -> None:
    async with context.db.transaction() as session:
        await session.execute(delete(Peer).where(Peer.id == link.id))
        await record_event(
            session, "peer.unregistered", f"{link.name} ({link.url}) unregistered from this server"
        )
    forget_links(context)
