"""The peer API under /api/ods/: only registered servers, every request signed."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute

from ods.mesh import reconcile, serving, tombstones
from ods.mesh.inbound import intake
from ods.mesh.peers import registration, verification
from ods.mesh.peers.verification import AnswerKey
from ods.mesh.protocol.answers import ANSWER_SIGNATURE, answer_signature
from ods.mesh.protocol.client import PEER_API, PeerLink
from ods.mesh.protocol.wire import (
    Inventory,
    Notification,
    PackageManifest,
    PeerRegistration,
    RegistrationAnswer,
    ServerCard,
    TombstoneCard,
)
from ods.server.identity import get_identity
from ods.trust.keys import signing_key
from ods.web.deps import ContextDep
from ods.web.errors import ErrorBody
from ods.web.zero_copy import FileRangeResponse

# Answers whose body is not in memory to sign: chunk runs.
UNSIGNED = (StreamingResponse, FileRangeResponse)


class SignedAnswerRoute(APIRoute):
    """Signs each answer to a verified request with the link secret and the request's nonce.

    Chunk runs are streamed unsigned: their bytes are checked against the
    digests of the signed manifest. Refusals are not signed: nothing acts on them.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def signed(request: Request) -> Response:
            response = await handler(request)
            key: AnswerKey | None = getattr(request.state, "answer_key", None)
            if key is not None and not isinstance(response, UNSIGNED):
                response.headers[ANSWER_SIGNATURE] = answer_signature(
                    key.secret, key.nonce, response.status_code, bytes(response.body)
                )
            return response

        return signed


router = APIRouter(
    prefix=PEER_API,
    tags=["peer"],
    route_class=SignedAnswerRoute,
    responses={
        400: {"model": ErrorBody, "description": "A value this server refuses, with the reason"},
        401: {"model": ErrorBody, "description": "Signature refused, with the reason"},
    },
)


def signed_target(request: Request) -> str:
    """Path and query as signed: from /api/ods on, whatever prefix a proxy added."""
    path: str = request.scope["path"]
    start = path.find(PEER_API + "/")
    target = path[start:] if start >= 0 else path
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{target}?{query}" if query else target


async def signed_peer(request: Request, context: ContextDep) -> PeerLink:
    body = await request.body()
    verified = await verification.verify_peer_request(
        context, request.headers, request.method, signed_target(request), body
    )
    request.state.answer_key = verified.answer_key
    return verified.link


SignedPeer = Annotated[PeerLink, Depends(signed_peer)]


@router.post(
    "/register",
    operation_id="peer_register",
    status_code=201,
    responses={409: {"model": ErrorBody, "description": "Registered already under another link"}},
)
async def accept_registration(
    card: PeerRegistration, request: Request, context: ContextDep
) -> RegistrationAnswer:
    """Another ODS registers with this one (sealed link secret, signed with it)."""
    # `card` puts the body in the schema and refuses a malformed one (422); the
    # signature covers the bytes as sent, so the service reads those.
    body = await request.body()
    answer, request.state.answer_key = await registration.accept_registration(
        context, request.headers, signed_target(request), body
    )
    return answer


@router.post("/unregister", operation_id="peer_unregister", status_code=204)
async def accept_unregistration(peer: SignedPeer, context: ContextDep) -> Response:
    """The peer forgot this server; forget it too."""
    await registration.accept_unregistration(context, peer)
    return Response(status_code=204)


@router.post(
    "/notify",
    operation_id="peer_notify",
    status_code=202,
    response_class=Response,
    responses={202: {"description": "Accepted; the fetch, if any, is queued. No body."}},
)
async def notify(body: Notification, peer: SignedPeer, context: ContextDep) -> Response:
    """A package version is available at the sender; fetch it unless it is known here."""
    await intake.accept_notification(context, peer, body)
    return Response(status_code=202)


@router.post(
    "/forget",
    operation_id="peer_forget",
    status_code=202,
    response_class=Response,
    responses={
        202: {"description": "Accepted; the version is gone here or never taken. No body."},
        403: {"model": ErrorBody, "description": "The signed delete does not verify"},
        409: {"model": ErrorBody, "description": "The version is being published here"},
    },
)
async def forget(body: TombstoneCard, peer: SignedPeer, context: ContextDep) -> Response:
    """A package version was deleted or replaced: remove it here too, and pass it on."""
    await tombstones.accept(context, peer, body)
    return Response(status_code=202)


@router.get("/packages", operation_id="peer_inventory")
async def inventory(_: SignedPeer, context: ContextDep) -> Inventory:
    """Every package published here, for reconciliation and polling."""
    return await reconcile.inventory(context)


@router.get("/packages/{uuid}", operation_id="peer_package")
async def package(uuid: str, _: SignedPeer, context: ContextDep) -> PackageManifest:
    """One published package with the digests of its chunks."""
    return await serving.manifest(context, uuid)


@router.get(
    "/packages/{uuid}/chunks/{index}",
    operation_id="peer_chunk",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def chunk(uuid: str, index: int, _: SignedPeer, context: ContextDep) -> Response:
    """The bytes of one 1 MiB chunk."""
    data = await serving.read_chunk(context, uuid, index)
    return Response(content=data, media_type="application/octet-stream")


@router.get(
    "/packages/{uuid}/chunks",
    operation_id="peer_chunk_run",
    response_class=FileRangeResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def chunk_run(
    uuid: str,
    _: SignedPeer,
    context: ContextDep,
    start: Annotated[int, Query(ge=0, description="Index of the first chunk.")],
    count: Annotated[int, Query(ge=1, le=serving.MAX_RUN_CHUNKS, description="How many chunks.")],
) -> FileRangeResponse:
    """Consecutive 1 MiB chunks as one body: one request for many chunks."""
    run = await serving.chunk_run(context, uuid, start, count)
    return FileRangeResponse(run.path, run.offset, run.length)


@router.post("/hello", operation_id="peer_hello")
async def hello(body: ServerCard, peer: SignedPeer, context: ContextDep) -> ServerCard:
    """Exchange server cards: each side learns the other's stage and firewalled mode."""
    await reconcile.apply_card(context, peer, body)
    me = await get_identity(context.db, context.cipher)
    key = await signing_key(context)
    return ServerCard.model_validate(registration.server_card(me, key.public))
