"""A full disk, for real: data dirs on a small tmpfs, real `ods serve` processes.

An upload that does not fit answers 507 and leaves nothing; a receiver whose
disk fills up in the middle of a fetch waits, visibly, keeps answering reads,
says why it is not ready, and finishes the package once space is freed,
without a restart: with SQLite in the data dir (which then refuses writes
too) and with the database elsewhere.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.api import assert_error
from tests.helpers.disk import fill, small_disk
from tests.helpers.packages import CONTENT_TYPE, MIB, content_of, field_part, file_part, multipart
from tests.helpers.processes.mesh import PASSWORD, Node, random_file
from tests.helpers.processes.proxy import StallingProxy
from tests.helpers.processes.serve import free_port, serving

pytestmark = pytest.mark.e2e

DISK_MIB = 64
RESERVE = "4M"


async def wait_until(what: str, seconds: float, check: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.1)


async def streamed(body: bytes) -> AsyncIterator[bytes]:
    """The body in 1 MiB pieces, with no Content-Length: the server cannot check it ahead."""
    for start in range(0, len(body), MIB):
        yield body[start : start + MIB]


def warnings_about(log: str, words: str) -> list[str]:
    return [line for line in log.splitlines() if " WARNING " in line and words in line]


async def test_an_upload_that_does_not_fit_is_507_leaves_nothing_and_the_server_stays_up(
    tmp_path: Path,
) -> None:
    disk = tmp_path / "disk"
    with (
        small_disk(disk, DISK_MIB),
        serving(disk, admin_password=PASSWORD, ODS_MIN_FREE_SPACE=RESERVE) as server,
    ):
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            login = await client.post(
                "/api/auth/login", json={"username": "admin", "password": PASSWORD}
            )
            client.headers["Authorization"] = f"Bearer {login.json()['token']}"
            filler = fill(disk, leave=12 * MIB)
            headers = {"Content-Type": CONTENT_TYPE}

            # 10 MiB declared, 8 MiB usable beside the 4 MiB reserve: refused before reading.
            body = multipart(
                [field_part("stage", "Prod"), file_part("Big.pkg", content_of(10 * MIB))]
            )
            refused = await client.post("/api/admin/upload", content=body, headers=headers)
            error = assert_error(refused, 507, "insufficient_storage", "ODS_MIN_FREE_SPACE")
            (numbers,) = error["details"]
            assert numbers["needed_bytes"] == len(body)
            assert numbers["reserve_bytes"] == 4 * MIB
            assert numbers["free_bytes"] < len(body) + 4 * MIB

            # 20 MiB with no length: the disk fills up on the way.
            body = multipart(
                [field_part("stage", "Prod"), file_part("Big.pkg", content_of(20 * MIB))]
            )
            full = await client.post("/api/admin/upload", content=streamed(body), headers=headers)
            assert_error(full, 507, "insufficient_storage", "nothing was saved")

            listing = await client.get("/api/admin/packages")
            assert listing.json() == {"items": [], "total": 0}
            assert list(server.share_dir.iterdir()) == []
            assert list(server.staging_dir.iterdir()) == []
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            log = server.output()
            assert len(warnings_about(log, "upload refused")) == 1, log
            assert "Traceback" not in log, log

            filler.unlink()
            small = multipart([field_part("stage", "Prod"), file_part("Big.pkg", content_of(MIB))])
            stored = await client.post("/api/admin/upload", content=small, headers=headers)
            assert stored.status_code == 201, stored.text


async def package_of(client: httpx.AsyncClient, filename: str) -> dict[str, Any] | None:
    response = await client.get(f"/api/admin/packages/{filename}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("database", ["in the data dir", "elsewhere"])
async def test_a_receiver_whose_disk_fills_mid_fetch_waits_and_finishes_when_space_returns(
    tmp_path: Path, database: str
) -> None:
    disk = tmp_path / "disk"
    env = {"ODS_MIN_FREE_SPACE": "2M", "ODS_FETCH_STALL_SECONDS": "120"}
    if database == "elsewhere":
        env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'receiver.db'}"
    source = Node("ods-source", tmp_path / "source", free_port())
    with small_disk(disk, DISK_MIB):
        receiver = Node("ods-receiver", disk, free_port(), env)
        try:
            for node in (source, receiver):
                node.start()
                await node.login()
                await node.configure("Prod")
            path = tmp_path / "Office.pkg"
            sha256 = random_file(path, 24 * MIB + 3)
            await source.upload(path)
            # A token not used yet: its first use records last_used, a database write.
            async with receiver.client() as client:
                made = await client.post("/api/admin/tokens", json={"name": "monitoring"})
            assert made.status_code == 201, made.text
            fresh = {"Authorization": f"Bearer {made.json()['token']}"}

            async with (
                StallingProxy(source.port, stall_after=10 * MIB) as link,
                receiver.client() as client,
            ):
                await receiver.register_with(source, url=link.url)
                await asyncio.wait_for(link.stalled.wait(), 60)

                async def chunks_in() -> bool:
                    package = await package_of(client, "Office.pkg")
                    return package is not None and package["progress"]["chunks_done"] >= 8

                await wait_until("8 chunks are in", 30, chunks_in)
                filler = fill(disk, leave=0)
                link.resume()

                async def waiting() -> bool:
                    package = await package_of(client, "Office.pkg")
                    assert package is not None
                    return (package["status_reason"] or "").startswith("waiting for disk space")

                await wait_until("the fetch waits for space", 30, waiting)
                package = await package_of(client, "Office.pkg")
                assert package is not None
                assert package["status"] == "Downloading"
                assert package["progress"]["chunks_done"] >= 8  # the checked chunks stay

                # Reads keep working, with a token whose use cannot be recorded now.
                async with httpx.AsyncClient(base_url=receiver.url, headers=fresh) as reader:
                    listing = await reader.get("/api/admin/packages")
                    assert listing.status_code == 200, listing.text
                    assert (await reader.get("/api/admin/events")).status_code == 200
                ready = await client.get("/readyz")
                assert_error(ready, 503, "unavailable", "disk is full", "ODS_MIN_FREE_SPACE")
                if database == "elsewhere":
                    assert await receiver.events("package.waiting_for_space")
                    assert package["status_reason"].startswith("waiting for disk space")

                filler.unlink()
                await receiver.wait_served("Office.pkg", sha256, seconds=60)

                done = await package_of(client, "Office.pkg")
                assert done is not None
                assert done["status"] == "Public"
                assert done["status_reason"] is None
                (event,) = await receiver.events("package.waiting_for_space")
                assert event["data"]["reserve_bytes"] == 2 * MIB
                assert (await client.get("/readyz")).status_code == 200
                assert list((disk / "staging").iterdir()) == []
            assert receiver.server is not None
            log = receiver.server.output()
            assert "Traceback" not in log, log
            assert len(warnings_about(log, "the fetch of Office.pkg waits")) == 1, log
        finally:
            receiver.stop()
            source.stop()
