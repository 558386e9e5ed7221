"""A scaled-out site as docs/install.md builds it: two `ods serve` processes and two `ods
worker`s on one PostgreSQL (or MariaDB), one Redis and one shared data dir, behind the shipped Nginx
config, with a single-process ODS as its peer.

Whatever process a request reaches, it sees the same packages, the same progress of a
fetch in flight and every change made through the other process at once; a package
offered by the peer is fetched once, by one worker; each event reaches a webhook and a
mail subscriber once, whichever processes dispatch and send.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import uuid as uuid_module
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ods.core.config import normalise_database_url
from ods.core.db import create_engine
from ods.core.models import Job
from tests.helpers.packages import MIB
from tests.helpers.processes.mesh import PASSWORD, Node, random_file, wait_for
from tests.helpers.processes.nginx import Nginx, nginx_in_front_of
from tests.helpers.processes.proxy import ThrottledProxy
from tests.helpers.processes.redis_server import redis_server
from tests.helpers.processes.serve import ODS, free_port, server_env
from tests.helpers.receivers.http import Receiver, receiving
from tests.helpers.receivers.smtp import SmtpReceiver
from tests.helpers.services import DatabaseServer
from tests.helpers.tls import self_signed_certificate

pytestmark = pytest.mark.e2e

FETCH_MIB = 8
SLOW = 512 * 1024  # bytes per second over the peer link: a fetch of FETCH_MIB takes ~16 s
FAST = 16 * MIB
HOOK_SECRET = "a scaled-out webhook secret"
NOTIFIED = ["package.uploaded", "package.available", "package.stage_changed", "package.deleted"]


@dataclass
class Site:
    serves: list[Node]
    workers: list[subprocess.Popen[bytes]]
    worker_logs: list[Path]
    nginx: Nginx
    database_url: str
    data_dir: Path
    hooks: Receiver
    smtp: SmtpReceiver

    def worker_output(self) -> str:
        return "".join(log.read_text(errors="replace") for log in self.worker_logs)


def start_worker(data_dir: Path, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [str(ODS), "worker"],
            env=server_env(data_dir, free_port(), PASSWORD, **env),
            stdout=output,
            stderr=output,
        )


@contextmanager
def workers_of(
    data_dir: Path, logs: list[Path], env: dict[str, str]
) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes = [start_worker(data_dir, log, env) for log in logs]
    try:
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


@pytest.fixture(params=["postgresql", "mariadb"])
async def site(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Site]:
    data_dir = tmp_path / "site"
    cert, key = self_signed_certificate(tmp_path)
    server: DatabaseServer = request.getfixturevalue(f"{request.param}_server")
    async with server.fresh_database() as database_url:
        with redis_server(tmp_path / "redis") as redis_url, ExitStack() as stack:
            hooks = stack.enter_context(receiving(HOOK_SECRET))
            smtp = SmtpReceiver(tmp_path / "smtp")
            smtp.start()
            stack.callback(smtp.stop)
            env = {
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "ODS_ACCEL_REDIRECT": "/_ods_share/",
                "ODS_WEBHOOK_ALLOW": "127.0.0.1",
                **smtp.env(),
            }
            # As the recipe has it: the schema first, once, then the processes.
            await asyncio.to_thread(
                subprocess.run,
                [str(ODS), "db", "upgrade"],
                env=server_env(data_dir, free_port(), PASSWORD, **env),
                check=True,
                capture_output=True,
            )
            serves = [Node(f"site-{i}", data_dir, free_port(), dict(env)) for i in range(2)]
            for node in serves:
                # One after the other: the first writes the data dir's secrets.
                node.start()
                stack.callback(node.stop)
            logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
            workers = stack.enter_context(workers_of(data_dir, logs, env))
            nginx = stack.enter_context(
                nginx_in_front_of(
                    [node.port for node in serves], data_dir, cert, key, tmp_path / "nginx"
                )
            )
            for node in serves:
                await node.login()
            await serves[0].configure("Dev")
            yield Site(serves, workers, logs, nginx, database_url, data_dir, hooks, smtp)


async def fetch_jobs(database_url: str, uuid: str) -> list[tuple[str, int]]:
    engine = create_engine(normalise_database_url(database_url))
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(Job.status, Job.attempts).where(Job.key == f"fetch:{uuid}")
            )
            return [(status, attempts) for status, attempts in rows]
    finally:
        await engine.dispose()


async def accel_target(node: Node, filename: str) -> str | None:
    """Where the process hands a download to Nginx (X-Accel-Redirect), None if it refuses."""
    async with httpx.AsyncClient(base_url=node.url, timeout=60) as client:
        response = await client.get(f"/share/{filename}")
    if response.status_code != 200:
        return None
    return response.headers["X-Accel-Redirect"]


async def served_by_site(site: Site, filename: str, sha256: str) -> None:
    """Each serve process checks the download and hands it to Nginx, which sends the file
    from the shared data dir; through Nginx (which spreads requests over both) the bytes
    are right every time."""
    for node in site.serves:
        assert await accel_target(node, filename) == f"/_ods_share/{filename}"
    async with httpx.AsyncClient(base_url=site.nginx.url, verify=False, timeout=60) as edge:  # noqa: S501
        for _ in range(4):
            served = await edge.get(f"/share/{filename}")
            assert served.status_code == 200, served.text[:200]
            assert hashlib.sha256(served.content).hexdigest() == sha256


def public_on_both(site: Site, filename: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        seen = [await node.package(filename) for node in site.serves]
        return all(package is not None and package["status"] == "Public" for package in seen)

    return check


async def details(node: Node, filename: str) -> dict[str, Any]:
    async with node.client() as client:
        response = await client.get(f"/api/admin/packages/{filename}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.timeout(240)
async def test_a_scaled_out_site_behaves_as_one_server(site: Site, tmp_path: Path) -> None:
    first, second = site.serves
    nginx = site.nginx
    async with first.client() as client:
        hook = await client.post(
            "/api/admin/webhooks",
            json={"url": site.hooks.url, "secret": HOOK_SECRET, "events": NOTIFIED},
        )
        assert hook.status_code == 201, hook.text
        mail = await client.post(
            "/api/admin/email-subscriptions",
            json={"address": "site@example.org", "events": NOTIFIED},
        )
        assert mail.status_code == 201, mail.text

    # An upload through Nginx is Public and served by both processes and by Nginx.
    path = tmp_path / "Site.pkg"
    sha256 = random_file(path, 3 * MIB + 5)
    async with httpx.AsyncClient(base_url=nginx.url, verify=False, timeout=60) as edge:  # noqa: S501
        login = await edge.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
        assert login.status_code == 200, login.text
        edge.headers["Authorization"] = f"Bearer {login.json()['token']}"
        with path.open("rb") as handle:
            uploaded = await edge.post("/api/admin/upload", files={"file": (path.name, handle)})
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["status"] == "Public"
        await served_by_site(site, "Site.pkg", sha256)

    # A single-process peer offers a package: one worker fetches it, once, over a slow link.
    peer = Node("peer", tmp_path / "peer", free_port())
    peer.start()
    try:
        await peer.login()
        await peer.configure("Dev")
        async with ThrottledProxy(peer.port, SLOW) as link:
            await first.register_with(peer, url=link.url)
            big = tmp_path / "Peer.pkg"
            big_sha256 = random_file(big, FETCH_MIB * MIB + 7)
            offered = await peer.upload(big)
            uuid = str(uuid_module.UUID(str(offered["uuid"])))  # stored dashed, as job keys

            # The fetch in flight shows the same progress from either serve process.
            async def both_show_progress() -> bool:
                seen = [(await node.package("Peer.pkg")) or {} for node in site.serves]
                progress = [p.get("progress") for p in seen]
                return all(isinstance(p, dict) and p["chunks_done"] >= 2 for p in progress)

            await wait_for("progress on both serve processes", 60, both_show_progress)
            shown = [await details(node, "Peer.pkg") for node in site.serves]
            for package in shown:
                assert package["status"] == "Downloading"
                assert package["progress"]["chunks_total"] == FETCH_MIB + 1
                assert package["progress"]["source"] == "peer"
            done = [p["progress"]["chunks_done"] for p in shown]
            assert abs(done[0] - done[1]) <= 2, done  # saved once a second by the worker

            # Neither runs the fetch; each works out its rate from the saved progress.
            async def both_show_a_rate() -> bool:
                shown = [await details(node, "Peer.pkg") for node in site.serves]
                return all((p["progress"] or {}).get("rate") for p in shown)

            await wait_for("a rate on both serve processes", 30, both_show_a_rate)
            for node in site.serves:
                rate = (await details(node, "Peer.pkg"))["progress"]["rate"]
                assert SLOW / 4 < rate < SLOW * 4, rate
            link.bytes_per_second = FAST
            await wait_for("Peer.pkg Public", 90, public_on_both(site, "Peer.pkg"))
            await served_by_site(site, "Peer.pkg", big_sha256)
            # Fetched exactly once: one job row that ran once, one worker that says so,
            # and the peer sent the file's bytes once.
            assert await fetch_jobs(site.database_url, uuid) == [("done", 1)]
            assert site.worker_output().count("fetched Peer.pkg") == 1
            assert link.passed <= FETCH_MIB * MIB + 7 + MIB, link.passed
    finally:
        peer.stop()

    # The listing and the details agree on both processes.
    listings = []
    for node in site.serves:
        listing = await node.packages()
        listings.append(sorted(listing, key=lambda item: item["filename"]))
    assert listings[0] == listings[1]
    assert [item["filename"] for item in listings[0]] == ["Peer.pkg", "Site.pkg"]
    assert await details(first, "Peer.pkg") == await details(second, "Peer.pkg")

    # A stage change and a delete through one process are seen by the other at once.
    async with first.client() as client:
        changed = await client.patch("/api/admin/packages/Site.pkg", json={"stage": "Test"})
        assert changed.status_code == 200, changed.text
    assert (await details(second, "Site.pkg"))["stage"] == "Test"
    async with second.client() as client:
        deleted = await client.delete("/api/admin/packages/Peer.pkg")
        assert deleted.status_code == 204, deleted.text
    assert await first.package("Peer.pkg") is None
    assert await accel_target(first, "Peer.pkg") is None
    assert [item["filename"] for item in await first.packages()] == ["Site.pkg"]

    # Each event went out once, to the webhook and by mail, though two serve processes
    # dispatch and send mail and two workers run the deliveries.
    async def all_notified() -> bool:
        return len(site.hooks.received) >= len(NOTIFIED) and len(site.smtp.mails) >= len(NOTIFIED)

    await wait_for("every event notified", 60, all_notified)
    await asyncio.sleep(3)  # a few more rounds of each process: nothing more arrives
    assert sorted(site.hooks.events()) == sorted(NOTIFIED)
    assert len({item.headers["x-ods-delivery"] for item in site.hooks.received}) == len(NOTIFIED)
    assert site.hooks.bad_signatures == 0
    subjects = sorted(str(mail["Subject"]) for mail in site.smtp.mails)
    assert len(subjects) == len(NOTIFIED), subjects
    assert sum("Site.pkg" in subject for subject in subjects) == 2, subjects

    for node in site.serves:
        assert node.server is not None
        assert "Traceback" not in node.server.output()
    assert "Traceback" not in site.worker_output()
