"""Typed dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ods.core.auth import Principal, Role, authenticate, require_role
from ods.core.context import Context
from ods.core.errors import PasswordChangeRequired, Unauthorized
from ods.web.errors import ERROR_RESPONSES

bearer = HTTPBearer(auto_error=False, description="A login token or an API token.")


def get_context(request: Request) -> Context:
    context: Context = request.app.state.context
    return context


ContextDep = Annotated[Context, Depends(get_context)]


async def any_principal(
    context: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, even one who still has to change the first-start password."""
    if credentials is None:
        raise Unauthorized(
            "Log in first: send 'Authorization: Bearer <token>' "
            "with a token from POST /api/auth/login."
        )
    return await authenticate(context.db, credentials.credentials)


AnyPrincipal = Annotated[Principal, Depends(any_principal)]


async def current_user(principal: AnyPrincipal) -> Principal:
    if principal.must_change_password:
        raise PasswordChangeRequired(
            "Change the first-start password before anything else: "
            "POST /api/auth/password with old_password and new_password."
        )
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]


async def package_manager(principal: CurrentUser) -> Principal:
    require_role(principal, Role.PACKAGE_MANAGER)
    return principal


async def admin(principal: CurrentUser) -> Principal:
    require_role(principal, Role.ADMIN)
    return principal


PackageManager = Annotated[Principal, Depends(package_manager)]
Admin = Annotated[Principal, Depends(admin)]


def admin_router(tag: str) -> APIRouter:
    """A router under /api/admin for logged-in users, answering errors in the one shape."""
    return APIRouter(
        prefix="/api/admin",
        tags=[tag],
        dependencies=[Depends(current_user)],
        responses=ERROR_RESPONSES,
    )
