"""Trust in the admin API: the policy on origins, this server's key, the pinned keys."""

from __future__ import annotations

from fastapi import Response

from ods.core.errors import NotFound
from ods.events.log import record
from ods.events.trust_events import OriginKeyForgotten, TrustPolicyChanged
from ods.trust.keys import forget_key
from ods.trust.overview import overview
from ods.trust.policy import set_policy
from ods.trust.schemas import TrustOut, TrustUpdate
from ods.trust.statements import fingerprint
from ods.web.deps import Admin, ContextDep, admin_router
from ods.web.errors import ErrorBody

router = admin_router("trust")


@router.get("/trust", operation_id="get_trust")
async def get_trust(context: ContextDep) -> TrustOut:
    """Whose packages this server takes, its own signing key, and the keys it has pinned."""
    return await overview(context)


@router.put("/trust", operation_id="set_trust")
async def put_trust(body: TrustUpdate, context: ContextDep, principal: Admin) -> TrustOut:
    """Take packages from any server of the mesh, or only from listed origins."""
    policy = await set_policy(context, body.policy, tuple(body.origins))
    async with context.db.transaction() as session:
        changed = TrustPolicyChanged(policy=policy.mode, origins=list(policy.origins))
        await record(session, changed, actor=principal.username)
    return await overview(context)


@router.delete(
    "/trust/keys/{iss}",
    operation_id="forget_pinned_key",
    status_code=204,
    responses={404: {"model": ErrorBody, "description": "No key is pinned for that iss"}},
)
async def forget_pinned_key(iss: str, context: ContextDep, principal: Admin) -> Response:
    """Unpin a server's signing key; the next key seen for it is pinned instead.

    For a server that really has a new key (restored from a backup without
    its database, say): check the new fingerprint with its admin first.
    """
    forgotten = await forget_key(context, iss)
    if forgotten is None:
        raise NotFound(f"No signing key is pinned for {iss}.")
    async with context.db.transaction() as session:
        event = OriginKeyForgotten(iss=iss, fingerprint=fingerprint(forgotten))
        await record(session, event, actor=principal.username)
    return Response(status_code=204)
