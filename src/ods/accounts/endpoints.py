"""Login, logout, password change, and who am I: `/api/auth/`."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, Response

from ods.accounts import login as logins
from ods.accounts import service
from ods.accounts.directory import Directory
from ods.accounts.schemas import LoginRequest, LoginResponse, Me, PasswordChange
from ods.accounts.throttle import LoginThrottle
from ods.web.deps import AnyPrincipal, ContextDep
from ods.web.errors import ERROR_RESPONSES, ErrorBody

router = APIRouter(prefix="/api/auth", tags=["auth"], responses=ERROR_RESPONSES)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/login",
    operation_id="login",
    responses={
        429: {"model": ErrorBody, "description": "Too many failed logins"},
        503: {"model": ErrorBody, "description": "The directory (LDAP) does not answer"},
    },
)
async def login(body: LoginRequest, request: Request, context: ContextDep) -> LoginResponse:
    """Exchange a username and password for a bearer token.

    Local accounts first; a name with no local account is looked up in the directory
    when LDAP login is configured (503 while the directory does not answer)."""
    address = client_address(request)
    ttl = dt.timedelta(hours=context.settings.token_ttl_hours)
    return await logins.login(
        context.db,
        context.part(LoginThrottle),
        context.part(Directory),
        body.username,
        body.password,
        address,
        ttl,
    )


@router.post(
    "/password",
    operation_id="change_password",
    status_code=204,
    responses={429: {"model": ErrorBody, "description": "Too many wrong old passwords"}},
)
async def change_password(
    body: PasswordChange, principal: AnyPrincipal, request: Request, context: ContextDep
) -> Response:
    """Change the caller's password (required first for the first-start account)."""
    await service.change_password(
        context.db,
        context.part(LoginThrottle),
        principal,
        body.old_password,
        body.new_password,
        client_address(request),
    )
    return Response(status_code=204)


@router.post("/logout", operation_id="logout", status_code=204)
async def logout(principal: AnyPrincipal, context: ContextDep) -> Response:
    """Revoke the token this request was made with."""
    await service.logout(context.db, principal)
    return Response(status_code=204)


@router.get("/me", operation_id="me")
async def me(principal: AnyPrincipal) -> Me:
    """Who the token belongs to, and whether the password must be changed."""
    return Me(
        id=principal.user_id,
        username=principal.username,
        role=principal.role,
        must_change_password=principal.must_change_password,
        source="ldap" if principal.source == service.DIRECTORY else "local",
    )
