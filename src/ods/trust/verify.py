"""Checking a statement from a peer: its signature, its signer's pinned key, the trust policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from pydantic import ValidationError

from ods.trust.keys import check_key
from ods.trust.policy import get_policy
from ods.trust.statements import (
    Opened,
    SignedStatement,
    Statement,
    Untrusted,
    open_statement,
)

if TYPE_CHECKING:
    from ods.core.context import Context

S = TypeVar("S", bound=Statement)


async def verify(
    context: Context, signed: SignedStatement | None, kind: type[S], *, via: str | None
) -> Opened[S]:
    """The statement, if it verifies, its signer is trusted here and signs with its pinned key.

    Raises Untrusted saying why not.
    """
    if signed is None:
        raise Untrusted("it carries no signed statement; its origin may run an older ODS")
    opened = open_statement(signed, kind)
    signer = opened.statement.signer
    policy = await get_policy(context)
    if not policy.allows(signer, context.iss):
        raise Untrusted(f"it is signed by {signer}, which is not a trusted origin here")
    await check_key(context, signer, opened.key, via=via)
    return opened


def stored(text: str | None) -> SignedStatement | None:
    """A statement as this server stored it (it was verified, or made, before it was stored)."""
    if not text:
        return None
    try:
        return SignedStatement.model_validate_json(text)
    except ValidationError:
        return None


def stored_as(text: str | None, kind: type[S]) -> S | None:
    """The content of a stored statement, trusted as checked when it was stored."""
    signed = stored(text)
    if signed is None:
        return None
    try:
        return open_statement(signed, kind).statement
    except Untrusted:
        return None
