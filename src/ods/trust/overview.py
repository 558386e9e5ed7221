"""The trust settings as the admin API shows them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from ods.core.humanize import iso
from ods.core.models import Peer
from ods.trust.keys import pinned_keys, signing_key
from ods.trust.policy import get_policy
from ods.trust.schemas import PinnedKey, TrustOut
from ods.trust.statements import fingerprint

if TYPE_CHECKING:
    from ods.core.context import Context


async def overview(context: Context) -> TrustOut:
    """Whose packages this server takes, its own key, and the keys it has pinned."""
    policy = await get_policy(context)
    own = await signing_key(context)
    async with context.db.session() as session:
        names = {
            iss: name for iss, name in (await session.execute(select(Peer.iss, Peer.name))).all()
        }
    keys = [
        PinnedKey(
            iss=key.iss,
            name=names.get(key.iss),
            public_key=key.public_key,
            fingerprint=fingerprint(key.public_key),
            first_seen=iso(key.first_seen),
            via_iss=key.via_iss,
        )
        for key in await pinned_keys(context)
    ]
    return TrustOut(
        policy=policy.mode,
        origins=list(policy.origins),
        public_key=own.public,
        fingerprint=fingerprint(own.public),
        keys=keys,
    )
