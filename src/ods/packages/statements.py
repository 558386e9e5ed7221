"""Statements for what this server made before servers signed: done once, at start-up.

Packages uploaded here and deletes made here before this version carry no
signed statement, and peers now refuse what nothing vouches for. At
start-up this server signs its own uploads, and the deletes it knows
(a replaced version is vouched for by its successor's statement).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import or_, select

from ods.core.models import Chunk, Package, Tombstone
from ods.core.statuses import Status
from ods.packages.service import PROPAGATED
from ods.trust.keys import signing_key
from ods.trust.make import delete_statement, package_statement
from ods.trust.statements import uuid_binding_problem

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)


async def sign_unsigned(context: Context) -> int:
    """Sign this server's unsigned uploads and known deletes; how many were signed."""
    key = await signing_key(context)
    signed = 0
    async with context.db.transaction() as session:
        packages = (
            await session.execute(
                select(Package).where(
                    Package.statement.is_(None),
                    Package.status == Status.PUBLIC.value,
                    or_(Package.origin_iss.is_(None), Package.origin_iss == key.iss),
                )
            )
        ).scalars()
        for package in packages:
            if uuid_binding_problem(package.uuid, key.iss, None) is not None:
                # Bound uuids are only made with their statement, in one transaction.
                log.warning(
                    "%s (%s) has lost its signed statement; upload it again to sign it",
                    package.filename,
                    package.uuid,
                )
                continue
            chunks = (
                await session.execute(select(Chunk).where(Chunk.package_id == package.id))
            ).scalars()
            package.origin_iss = key.iss
            package.statement = package_statement(key, package, list(chunks))
            signed += 1
        tombstones = (
            await session.execute(
                select(Tombstone).where(
                    Tombstone.statement.is_(None), Tombstone.reason.in_(PROPAGATED)
                )
            )
        ).scalars()
        for tombstone in tombstones:
            successor = (
                await session.execute(
                    select(Package.uuid, Package.statement).where(
                        Package.replaces == tombstone.uuid
                    )
                )
            ).first()
            if successor is not None and successor.statement is not None:
                tombstone.statement = successor.statement
            else:
                tombstone.statement = delete_statement(
                    key,
                    tombstone.uuid,
                    tombstone.filename,
                    tombstone.reason,
                    successor.uuid if successor is not None else None,
                )
            signed += 1
    if signed:
        log.info("signed %d package(s) and delete(s) made before this server signed them", signed)
    return signed
