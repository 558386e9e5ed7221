"""Registering two servers with each other: the handshake on both sides, and unregistering."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, NoReturn

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ods.core.db import get_row
from ods.core.errors import Conflict, InvalidInput, NotFound, OdsError
from ods.core.models import Peer, utcnow
from ods.core.urls import server_url
from ods.events.catalogue import PeerRegistered, PeerRegistrationRefused, PeerUnregistered
from ods.events.log import record
from ods.mesh.peers.links import forget_links, link_by_iss, link_of, secret_context
from ods.mesh.peers.listing import list_peers
from ods.mesh.peers.verification import AnswerKey, SignatureRefused, remember_nonce
from ods.mesh.protocol import signing
from ods.mesh.protocol.client import (
    PeerLink,
    PeerRefused,
    check_answer,
    refusal_text,
    signed_request,
)
from ods.mesh.protocol.sealing import SealRejected, decode_key, seal, unseal
from ods.mesh.protocol.wire import PeerRegistration, RegistrationAnswer
from ods.mesh.schemas import PeerOut, RegisterRequest
from ods.server.identity import Identity, get_identity
from ods.trust.keys import check_key, signing_key
from ods.trust.statements import Untrusted

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)


def registration_proof(secret: bytes, answer: Mapping[str, object]) -> str:
    canonical = json.dumps(dict(answer), sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(secret, b"ods-registered\n" + canonical, hashlib.sha256).hexdigest()


def link_proof(old_secret: bytes, sealed_secret: str) -> str:
    """Proof that a re-registration comes from the server that holds the current link:
    the new sealed secret, signed with the old one."""
    message = b"ods-reregister\n" + sealed_secret.encode("ascii")
    return hmac.new(old_secret, message, hashlib.sha256).hexdigest()


def server_card(me: Identity, public_key: str | None) -> dict[str, object]:
    return {
        "iss": me.iss,
        "name": me.name,
        "url": me.url,
        "stage": me.stage.value,
        "firewalled_mode": me.firewalled_mode,
        "public_key": public_key,
    }


def check_peer_url(url: str) -> str:
    """The other server's url, normalised (`ods.core.urls`), or InvalidInput saying why not."""
    try:
        return server_url(url)
    except ValueError as exc:
        raise InvalidInput(f"url {url!r} {exc}.") from None


def card_url(url: str) -> str:
    """The url a registering server sends for itself, checked as an admin's would be."""
    try:
        return server_url(url)
    except ValueError as exc:
        raise InvalidInput(
            f"The registering server's url {url!r} {exc}: its admin sets it with "
            "POST /api/admin/about/update."
        ) from None


async def _check_request(
    context: Context, request: RegisterRequest
) -> tuple[str, Identity, PeerLink | None]:
    """The peer's checked url, this server's identity and the current link to the peer if
    there is one (registering again updates it), or InvalidInput saying what is wrong."""
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
    return url, me, await link_by_iss(context, request.iss_id)


async def _handshake(
    context: Context,
    request: RegisterRequest,
    url: str,
    me: Identity,
    secret: bytes,
    current: PeerLink | None,
) -> RegistrationAnswer:
    """Hand the peer this server's card and the sealed link secret; check its proof.

    When a link exists already, the new secret is vouched for with the old one.
    """
    key = await signing_key(context)
    sealed = seal(secret, request.key, sender=me.iss, receiver=request.iss_id)
    registration = PeerRegistration.model_validate(
        server_card(me, key.public)
        | {
            "sealed_secret": sealed,
            "link_proof": link_proof(current.secret, sealed) if current is not None else None,
        }
    )
    answer = await signed_request(
        context.http,
        own_iss=me.iss,
        receiver_iss=request.iss_id,
        secret=secret,
        base_url=url,
        method="POST",
        path="/register",
        body=registration.model_dump(mode="json"),
    )
    if answer.status in (401, 403):
        raise InvalidInput(
            f"{url} refused the registration ({refusal_text(answer.status, answer.content)}). "
            "Check the iss and key on its About page."
        )
    if answer.status == 409:
        raise Conflict(f"{url} refused the registration: {refusal_text(409, answer.content)}")
    check_answer(answer, secret, url, "/register")
    parsed = answer.parse(RegistrationAnswer, url, "an answer")
    card = parsed.model_dump(mode="json", exclude={"proof"})
    if parsed.iss != request.iss_id or not hmac.compare_digest(
        parsed.proof, registration_proof(secret, card)
    ):
        raise PeerRefused(f"{url} answered, but not as the server with iss {request.iss_id}.")
    if parsed.public_key is not None:
        try:
            await check_key(context, parsed.iss, parsed.public_key, via=parsed.iss)
        except Untrusted as exc:
            raise Conflict(f"{url} answered with another signing key: {exc}.") from None
    return parsed


async def register(context: Context, request: RegisterRequest, actor: str) -> PeerOut:
    """Register with another ODS: both sides end up storing each other.

    Registering again with a registered server updates the link (its url, a
    new secret), proven to the other side with the current secret.
    """
    url, me, current = await _check_request(context, request)
    secret = secrets.token_bytes(32)
    answer = await _handshake(context, request, url, me, secret, current)
    async with context.db.transaction() as session:
        peer = (
            await session.execute(select(Peer).where(Peer.iss == answer.iss))
        ).scalar_one_or_none()
        if peer is None:
            peer = Peer(iss=answer.iss)
            session.add(peer)
        peer.name = answer.name
        peer.url = url
        peer.stage = answer.stage.value
        peer.firewalled_mode = answer.firewalled_mode
        peer.secret_encrypted = context.cipher.encrypt(secret.hex(), secret_context(answer.iss))
        peer.last_contact = utcnow()
        peer.reachable = True
        peer.last_error = None
        try:
            await session.flush()
        except IntegrityError:
            raise Conflict(f"{answer.name or url} is being registered already.") from None
        registered = PeerRegistered(
            iss=answer.iss,
            name=answer.name,
            url=url,
            by_peer=False,
            re_registered=current is not None,
        )
        await record(session, registered, actor=actor)
    forget_links(context)
    return next(p for p in await list_peers(context) if p.iss == answer.iss)


async def accept_registration(
    context: Context, headers: Mapping[str, str], target: str, body: bytes
) -> tuple[RegistrationAnswer, AnswerKey]:
    """The other side of `register`: open the sealed secret, check the signature, store.

    A server registered here already must prove the current link secret, so
    whoever else holds this server's key cannot take its place. Returns the
    answer and what to sign it with.
    """
    me = await get_identity(context.db, context.cipher)
    try:
        registration = PeerRegistration.model_validate_json(body)
    except ValidationError:
        raise InvalidInput("The registration body is not valid.") from None
    registration = registration.model_copy(update={"url": card_url(registration.url)})
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

    current = await link_by_iss(context, registration.iss)
    if current is not None:
        proof = registration.link_proof or ""
        if not hmac.compare_digest(proof, link_proof(current.secret, registration.sealed_secret)):
            await _refuse(
                context,
                registration,
                "it is registered here already, and the request does not prove the current "
                "link secret",
            )
    if registration.public_key is not None:
        try:
            await check_key(
                context, registration.iss, registration.public_key, via=registration.iss
            )
        except Untrusted as exc:
            await _refuse(context, registration, f"its signing key differs: {exc}")
    async with context.db.transaction() as session:
        peer = (
            await session.execute(select(Peer).where(Peer.iss == registration.iss))
        ).scalar_one_or_none()
        registered = PeerRegistered(
            iss=registration.iss,
            name=registration.name,
            url=registration.url,
            by_peer=True,
            re_registered=peer is not None,
        )
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
        await record(session, registered)
    forget_links(context)
    card = server_card(me, (await signing_key(context)).public)
    answer = RegistrationAnswer.model_validate(card | {"proof": registration_proof(secret, card)})
    return answer, AnswerKey(secret, parsed.nonce)


async def _refuse(context: Context, registration: PeerRegistration, reason: str) -> NoReturn:
    """Record a refused registration and answer 409 with the reason."""
    async with context.db.transaction() as session:
        await record(
            session,
            PeerRegistrationRefused(
                iss=registration.iss, name=registration.name, url=registration.url, reason=reason
            ),
        )
    raise Conflict(
        f"Registration refused: {reason}. If the server was reinstalled or its link was lost, "
        "unregister it here first; to change its url, register again from it."
    )


async def unregister(context: Context, peer_id: int, actor: str) -> None:
    """Forget a peer here, and tell it to forget this server (best effort)."""
    async with context.db.session() as session:
        peer = await get_row(session, Peer, peer_id)
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
            deadline=5.0,
        )
    except OdsError as exc:
        log.info("could not tell %s about the unregistration: %s", link.url, exc.message)
    async with context.db.transaction() as session:
        await session.execute(delete(Peer).where(Peer.id == peer_id))
        await record(
            session,
            PeerUnregistered(iss=link.iss, name=link.name, url=link.url, by_peer=False),
            actor=actor,
        )
    forget_links(context)


async def accept_unregistration(context: Context, link: PeerLink) -> None:
    async with context.db.transaction() as session:
        await session.execute(delete(Peer).where(Peer.id == link.id))
        await record(
            session, PeerUnregistered(iss=link.iss, name=link.name, url=link.url, by_peer=True)
        )
    forget_links(context)
