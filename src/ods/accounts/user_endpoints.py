"""Users and API tokens."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from ods.accounts import service
from ods.accounts.schemas import (
    TokenCreate,
    TokenCreated,
    TokenList,
    UserCreate,
    UserList,
    UserOut,
    UserUpdate,
)
from ods.web.deps import Admin, ContextDep, CurrentUser, admin_router
from ods.web.errors import ErrorBody

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "Conflict (name taken, last admin, own account)"}
}

router = admin_router("accounts")


@router.get("/users", operation_id="list_users")
async def list_users(context: ContextDep, _: Admin) -> UserList:
    """Every local account with its role."""
    return UserList(items=await service.list_users(context.db))


@router.post("/users", operation_id="create_user", status_code=201, responses=CONFLICT)
async def create_user(body: UserCreate, context: ContextDep, principal: Admin) -> UserOut:
    """Create an account: admin, package_manager or read_only."""
    return await service.create_user(context.db, body, principal.username)


@router.get("/users/{user_id}", operation_id="get_user")
async def get_user(user_id: int, context: ContextDep, _: Admin) -> UserOut:
    """One account by id."""
    return await service.get_user(context.db, user_id)


@router.patch("/users/{user_id}", operation_id="update_user", responses=CONFLICT)
async def update_user(
    user_id: int, body: UserUpdate, context: ContextDep, principal: Admin
) -> UserOut:
    """Change a role, or reset a password (the user must change it at next login)."""
    return await service.update_user(context.db, user_id, body, principal.username)


@router.delete("/users/{user_id}", operation_id="delete_user", status_code=204, responses=CONFLICT)
async def delete_user(user_id: int, context: ContextDep, principal: Admin) -> Response:
    """Delete an account and end its sessions and API tokens (not your own, not the last admin)."""
    await service.delete_user(context.db, user_id, principal)
    return Response(status_code=204)


@router.get("/tokens", operation_id="list_tokens")
async def list_tokens(context: ContextDep, principal: CurrentUser) -> TokenList:
    """The caller's tokens: login sessions and API tokens (secrets are never shown again)."""
    return TokenList(items=await service.list_tokens(context.db, principal))


@router.post("/tokens", operation_id="create_token", status_code=201)
async def create_token(
    body: TokenCreate, context: ContextDep, principal: CurrentUser
) -> TokenCreated:
    """A long-lived API token for automation (AutoPkg, CI). The secret is shown once."""
    return await service.create_api_token(context.db, principal, body)


@router.delete("/tokens/{token_id}", operation_id="revoke_token", status_code=204)
async def revoke_token(token_id: int, context: ContextDep, principal: CurrentUser) -> Response:
    """Revoke one of the caller's tokens (admins may revoke anyone's)."""
    await service.revoke_token(context.db, principal, token_id)
    return Response(status_code=204)
