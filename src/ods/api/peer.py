"""The peer API under /api/ods/: only registered servers, every request signed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from ods.api.deps import ContextDep
from ods.errors import ErrorBody
from ods.sync import peers
from ods.sync.client import PEER_API, PeerLink
from ods.sync.schemas import RegistrationAnswer

router = APIRouter(
    prefix=PEER_API,
    tags=["peer"],
    responses={401: {"model": ErrorBody, "description": "Signature refused, with the reason"}},
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
    return await peers.verify_peer_request(
        context, request.headers, request.method, signed_target(request), body
    )


SignedPeer = Annotated[PeerLink, Depends(signed_peer)]


@router.post("/register", operation_id="peer_register", status_code=201)
async def accept_registration(request: Request, context: ContextDep) -> RegistrationAnswer:
    """Another ODS registers with this one (sealed link secret, signed with it)."""
    body = await request.body()
    return await peers.accept_registration(context, request.headers, signed_target(request), body)


@router.post("/unregister", operation_id="peer_unregister", status_code=204)
async def accept_unregistration(peer: SignedPeer, context: ContextDep) -> Response:
    """The peer forgot this server; forget it too."""
    await peers.accept_unregistration(context, peer)
    return Response(status_code=204)
