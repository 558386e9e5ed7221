"""Statements for versions that arrived before servers signed them.

A version fetched before this release has no origin statement here, and
peers refuse to take it from this server. When a peer's inventory carries
the origin's statement for such a version, and the statement verifies and
says exactly what this server holds (size, digests, every chunk's digests),
this server keeps it: the version is verified from then on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from ods.core.models import Chunk, Package
from ods.core.statuses import Status
from ods.mesh.protocol.client import PeerLink
from ods.mesh.protocol.wire import PackageCard
from ods.trust.statements import PackageStatement, Untrusted, chunk_list_digest
from ods.trust.verify import verify

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)


async def _holds(context: Context, package: Package, statement: PackageStatement) -> bool:
    said = (statement.uuid, statement.filename, statement.file_size)
    digests = (statement.sha256, statement.sha1)
    if said != (package.uuid, package.filename, package.file_size):
        return False
    if digests != (package.sha256, package.sha1):
        return False
    async with context.db.session() as session:
        chunks = (
            await session.execute(
                select(Chunk.sha256, Chunk.sha1)
                .where(Chunk.package_id == package.id)
                .order_by(Chunk.index)
            )
        ).all()
    return (
        chunk_list_digest(c.sha256 for c in chunks) == statement.chunks_sha256
        and chunk_list_digest(c.sha1 for c in chunks) == statement.chunks_sha1
    )


async def adopt_statements(context: Context, link: PeerLink, cards: list[PackageCard]) -> int:
    """Keep the origin statements a peer offers for unsigned versions here; how many."""
    offered = {card.uuid: card for card in cards if card.statement is not None}
    if not offered:
        return 0
    async with context.db.session() as session:
        unsigned = list(
            (
                await session.execute(
                    select(Package).where(
                        Package.uuid.in_(list(offered)),
                        Package.statement.is_(None),
                        Package.status == Status.PUBLIC.value,
                    )
                )
            ).scalars()
        )
    adopted = 0
    for package in unsigned:
        try:
            opened = await verify(
                context, offered[package.uuid].statement, PackageStatement, via=link.iss
            )
        except Untrusted as exc:
            log.info(
                "%s offered a statement of %s that does not hold: %s",
                link.name,
                package.filename,
                exc,
            )
            continue
        if not await _holds(context, package, opened.statement):
            log.warning(
                "%s offered a statement of %s that differs from the version here",
                link.name,
                package.filename,
            )
            continue
        async with context.db.transaction() as session:
            row = await session.get(Package, package.id)
            if row is None or row.uuid != package.uuid or row.statement is not None:
                continue
            row.statement = opened.signed.model_dump_json()
            row.origin_iss = opened.statement.origin
            row.sha512 = opened.statement.sha512 or row.sha512
            adopted += 1
    return adopted
