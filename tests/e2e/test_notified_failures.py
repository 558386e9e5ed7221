"""A failed sync and a peer going dark reach both kinds of subscriber, and only those
that asked: real `ods serve` processes, a real webhook receiver, a real SMTP server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.helpers.notify import SECRET, add_hook, arrived, subscribe
from tests.helpers.packages import MIB
from tests.helpers.processes.mesh import Node, mesh_of, random_file
from tests.helpers.processes.proxy import StallingProxy
from tests.helpers.receivers.http import receiving
from tests.helpers.receivers.smtp import SmtpReceiver

pytestmark = pytest.mark.e2e


async def test_a_failed_sync_and_an_unreachable_peer_reach_their_webhooks_and_mail(
    tmp_path: Path,
) -> None:
    smtp = SmtpReceiver(tmp_path / "smtp")
    smtp.start()
    env = {
        **smtp.env(),
        "ODS_WEBHOOK_ALLOW": "127.0.0.1",
        "ODS_FETCH_STALL_SECONDS": "2",
        "ODS_RECONCILE_INTERVAL": "10",
    }
    try:
        with (
            mesh_of(tmp_path, 2, **env) as (source, receiver),
            receiving(SECRET) as failed,
            receiving(SECRET) as dark,
            receiving(SECRET) as uploads,
        ):
            for node in (source, receiver):
                await node.login()
                await node.configure("Prod")
            async with receiver.client() as client:
                await add_hook(client, failed, "package.failed")
                await add_hook(client, dark, "peer.unreachable")
                await add_hook(client, uploads, "package.uploaded")
            await subscribe(receiver, "failures@example.org", events=["package.failed"])
            await subscribe(receiver, "peers@example.org", events=["peer.unreachable"])
            await subscribe(receiver, "users@example.org", events=["user.created"])

            path = tmp_path / "Flaky.pkg"
            sha256 = random_file(path, 4 * MIB)
            await source.upload(path)
            # The fetch stalls on its link, then its only source is unregistered: it fails.
            async with StallingProxy(source.port, stall_after=MIB) as link:
                await receiver.register_with(source, url=link.url)
                await wait_status(receiver, path.name, "Downloading")
                async with receiver.client() as client:
                    (peer,) = (await client.get("/api/admin/registered_ods")).json()["items"]
                    gone = await client.delete(f"/api/admin/registered_ods/{peer['id']}")
                    assert gone.status_code == 204, gone.text
                await wait_status(receiver, path.name, "Failed")

            await arrived(failed, 1)
            sent = failed.received[0].json
            assert sent["event"] == "package.failed"
            assert sent["data"]["filename"] == path.name
            assert sent["data"]["sha256"] == sha256
            assert sent["data"]["status"] == "Failed"
            assert "no registered peer" in sent["data"]["reason"]
            assert sent["server"]["name"] == receiver.name

            await receiver.register_with(source)
            source.stop()
            await arrived(dark, 1, seconds=90)
            assert dark.received[0].json["event"] == "peer.unreachable"
            assert dark.received[0].json["data"]["name"] == source.name

            smtp.wait_for(2, timeout=60)
            await asyncio.sleep(3)  # more rounds: nothing else arrives
            subjects = sorted((str(m["To"]), str(m["Subject"])) for m in smtp.mails)
            recipients = [to for to, _ in subjects]
            # The stalled link may be found unreachable before it is unregistered (a
            # second peer.unreachable, under load): peers@ hears of each; nobody else
            # hears anything, and the failure is one mail.
            assert recipients.count("failures@example.org") == 1
            assert set(recipients) == {"failures@example.org", "peers@example.org"}
            assert path.name in subjects[0][1]
            failure = next(m for m in smtp.mails if m["To"] == "failures@example.org")
            text = failure.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            assert sha256 in text

        assert set(failed.events()) == {"package.failed"}
        assert set(dark.events()) == {"peer.unreachable"}
        assert uploads.received == []  # the upload happened on the other server
        for hook in (failed, dark):
            assert hook.bad_signatures == 0
    finally:
        smtp.stop()


async def wait_status(node: Node, filename: str, status: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        found = await node.package(filename)
        if found is not None and found["status"] == status:
            return
        assert time.monotonic() < deadline, f"{filename} never {status}: {found}"
        await asyncio.sleep(0.1)
