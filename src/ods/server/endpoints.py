"""Server settings and system information: the original admin API."""

from __future__ import annotations

import asyncio

from ods.core.auth import Role
from ods.server import identity
from ods.server.identity import About, AboutUpdate
from ods.server.system import SystemInfo, read_system_info
from ods.web.deps import Admin, ContextDep, CurrentUser, admin_router

router = admin_router("server")


@router.get("/about", operation_id="get_about")
async def get_about(context: ContextDep, principal: CurrentUser) -> About:
    """This server's identity and settings; peers register with iss and key (admins only)."""
    found = await identity.get_identity(context.db, context.cipher)
    return found.about(with_key=principal.role == Role.ADMIN)


@router.post("/about/update", operation_id="update_about", status_code=201)
async def update_about(body: AboutUpdate, context: ContextDep, principal: Admin) -> About:
    """Change name, url, stage or firewalled mode. iss and key cannot be changed."""
    updated = await identity.update_identity(context.db, context.cipher, body, principal.username)
    return updated.about()


@router.get("/system", operation_id="get_system")
async def get_system(context: ContextDep) -> SystemInfo:
    """CPU, memory, disk (of the data dir's filesystem), network and uptime."""
    return await asyncio.to_thread(read_system_info, context.settings.data_dir)
