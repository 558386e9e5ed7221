"""What a fetch leaves in staging: kept while a fetch may resume from it, removed once none can."""

from __future__ import annotations

import asyncio
import os
import uuid as uuidlib

import httpx
from sqlalchemy import update

from ods.app import create_app
from ods.core.config import Settings
from ods.core.models import Job, Package
from ods.core.statuses import Status
from ods.jobs import runner as jobs
from ods.jobs.kinds import Fetch
from ods.lifecycle import build_context, start
from ods.packages import service
from tests.helpers.mesh import Mesh, MeshTransport
from tests.helpers.packages import MIB, stored_uuid, uploaded


class ChunksRefused(httpx.AsyncBaseTransport):
    """The peer answers everything but chunk runs: a fetch gets as far as its staging file."""

    def __init__(self, inner: MeshTransport) -> None:
        self.inner = inner
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "/chunks" in request.url.path:
            self.refused += 1
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


async def test_a_fetch_that_gives_up_leaves_no_staging_file(mesh: Mesh) -> None:
    source = await mesh.add("ods-source")
    receiver = await mesh.add("ods-receiver")
    refusing = ChunksRefused(mesh.transport)
    await receiver.context.http.aclose()
    receiver.context.http = httpx.AsyncClient(transport=refusing, timeout=10.0)
    peer = (await receiver.register_with(source)).json()
    result = await uploaded(source.admin, "given-up.pkg", os.urandom(3 * MIB))
    staging = receiver.context.files.download(stored_uuid(result["uuid"]))

    for _ in range(300):
        if refusing.refused and staging.exists():
            break
        await asyncio.sleep(0.05)
    assert staging.exists(), "the fetch should have made its staging file"
    # With its only source gone, the next attempt gives up.
    forgot = await receiver.admin.delete(f"/api/admin/registered_ods/{peer['id']}")
    assert forgot.status_code == 204, forgot.text

    for _ in range(300):
        package = (await receiver.admin.get("/api/admin/packages/given-up.pkg")).json()
        if package["status"] == Status.FAILED.value:
            break
        await asyncio.sleep(0.05)
    assert package["status"] == Status.FAILED.value, package
    assert "no registered peer" in package["status_reason"]
    assert not staging.exists()
    assert sorted(receiver.context.settings.staging_dir.iterdir()) == []


async def test_start_up_removes_staging_no_fetch_will_resume_and_keeps_the_rest(
    settings: Settings,
) -> None:
    """`ods serve` runs; a second process on the same data dir (`ods worker`) starts."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        context = app.state.context
        uuids = {
            name: str(uuidlib.uuid4())
            for name in ("downloading", "coming", "failed", "public", "buried", "gone")
        }
        async with context.db.transaction() as session:
            for name, status in (
                ("downloading", Status.DOWNLOADING),
                ("failed", Status.FAILED),
                ("public", Status.PUBLIC),
            ):
                session.add(
                    Package(
                        uuid=uuids[name],
                        filename=f"{name}.pkg",
                        file_size=MIB,
                        sha1="0" * 40,
                        sha256="0" * 64,
                        stage="Prod",
                        status=status.value,
                    )
                )
            await service.bury(session, uuids["buried"], "buried.pkg", "deleted")
            # A version fetched over the Public one of its name has no row of its
            # own until it is in: only its job says a fetch is under way.
            for name, job_status in (("coming", jobs.JobStatus.RUNNING), ("failed", "failed")):
                key = await jobs.add_job(session, Fetch(uuid=uuids[name], peer="a" * 32))
                # Run by the serve process (its owner), which is alive.
                await session.execute(
                    update(Job)
                    .where(Job.key == key)
                    .values(status=job_status, owner=context.owner.id)
                )
        for each in uuids.values():
            context.files.download(each).write_bytes(b"chunks")

        worker = build_context(settings)
        try:
            await start(worker)
        finally:
            await worker.close()

        left = set(context.files.downloads())
        assert left == {uuids["downloading"], uuids["coming"]}
