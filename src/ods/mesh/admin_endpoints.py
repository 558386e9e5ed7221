"""The mesh in the admin API: register with another ODS, list and unregister peers."""

from __future__ import annotations

from fastapi import Response

from ods.mesh import reconcile
from ods.mesh.peers import listing, registration
from ods.mesh.schemas import PeerList, PeerOut, RegisterRequest
from ods.web.deps import Admin, ContextDep, admin_router
from ods.web.errors import ErrorBody

router = admin_router("network")


@router.get("/registered_ods", operation_id="list_registered_ods")
async def registered_ods(context: ContextDep) -> PeerList:
    """The servers this one is registered with, and the state of each link."""
    return PeerList(items=await listing.list_peers(context))


@router.post(
    "/register",
    operation_id="register_ods",
    status_code=201,
    responses={
        409: {"model": ErrorBody, "description": "Registered already"},
        502: {"model": ErrorBody, "description": "The other server is unreachable or refused"},
    },
)
async def register(body: RegisterRequest, context: ContextDep, principal: Admin) -> PeerOut:
    """Register with another ODS by its url, iss and key (from its About page).

    This server then reconciles with the new peer: it fetches what the peer
    has that it would accept.
    """
    peer = await registration.register(context, body, principal.username)
    await reconcile.reconcile_soon(context, peer.iss)
    return peer


@router.delete("/registered_ods/{peer_id}", operation_id="unregister_ods", status_code=204)
async def unregister(peer_id: int, context: ContextDep, principal: Admin) -> Response:
    """Forget a registered ODS; it is told to forget this one too."""
    await registration.unregister(context, peer_id, principal.username)
    return Response(status_code=204)
