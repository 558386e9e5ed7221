"""The trust policy: whose packages this server takes.

`any` (the default) takes packages, stage changes and deletes signed by any
server of the mesh. `listed` takes them only when signed by one of the
listed origins (this server always trusts itself): a server outside the
list, even a registered peer, can relay packages but not make them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ods.core.models import Server

if TYPE_CHECKING:
    from ods.core.context import Context

SERVER_ID = 1

Mode = Literal["any", "listed"]


@dataclass(frozen=True)
class Policy:
    mode: Mode
    origins: tuple[str, ...]

    def allows(self, iss: str, own_iss: str) -> bool:
        return self.mode == "any" or iss == own_iss or iss in self.origins


def parse_origins(text: str | None) -> tuple[str, ...]:
    return tuple(sorted({part for part in (text or "").split() if part}))


async def get_policy(context: Context) -> Policy:
    async with context.db.session() as session:
        row = await session.get(Server, SERVER_ID)
    if row is None or row.trust_policy != "listed":
        return Policy("any", parse_origins(row.trusted_origins if row else None))
    return Policy("listed", parse_origins(row.trusted_origins))


async def set_policy(context: Context, mode: Mode, origins: tuple[str, ...]) -> Policy:
    async with context.db.transaction() as session:
        row = await session.get(Server, SERVER_ID)
        assert row is not None
        row.trust_policy = mode
        row.trusted_origins = " ".join(sorted(set(origins)))
    return Policy(mode, parse_origins(" ".join(origins)))
