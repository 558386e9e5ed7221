"""Email notifications on real `ods serve` processes and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.notify import subscribe
from tests.helpers.processes.mesh import Node, mesh_of, random_file, wait_for
from tests.helpers.receivers.smtp import SmtpReceiver

pytestmark = pytest.mark.e2e

PATH = "/api/admin/email-subscriptions"


async def deliveries(node: Node, subscription_id: int) -> list[dict[str, Any]]:
    async with node.client() as client:
        response = await client.get(f"{PATH}/{subscription_id}/deliveries")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def addressed(smtp: SmtpReceiver) -> list[tuple[str, str]]:
    return sorted((str(mail["To"]), str(mail["Subject"])) for mail in smtp.mails)


async def test_upload_stage_change_and_delete_mail_the_matching_subscribers_only(
    tmp_path: Path,
) -> None:
    smtp = SmtpReceiver(tmp_path / "smtp", security="starttls", auth=("ods", "mail secret"))
    smtp.start()
    try:
        with mesh_of(tmp_path, 1, **smtp.env()) as (node,):
            await node.login()
            await node.configure("Dev")
            await subscribe(node, "uploads@example.org", events=["package.uploaded"])
            await subscribe(
                node, "changes@example.org", events=["package.stage_changed", "package.deleted"]
            )
            await subscribe(node, "quiet@example.org", events=["peer.registered"])
            path = tmp_path / "Firefox.pkg"
            sha256 = random_file(path, 100_000)
            package = await node.upload(path, stage="Dev")
            async with node.client() as client:
                changed = await client.patch(
                    f"/api/admin/packages/{package['id']}", json={"stage": "Prod"}
                )
                assert changed.status_code == 200, changed.text
                deleted = await client.delete(f"/api/admin/packages/{package['id']}")
                assert deleted.status_code == 204, deleted.text
            smtp.wait_for(3, timeout=60)
            await asyncio.sleep(5)  # two more mailer rounds: nothing else arrives
            assert addressed(smtp) == [
                ("changes@example.org", "[ods-0] Package deleted: Firefox.pkg"),
                ("changes@example.org", "[ods-0] Package stage changed: Firefox.pkg"),
                ("uploads@example.org", "[ods-0] Package uploaded: Firefox.pkg"),
            ]
            upload = next(mail for mail in smtp.mails if mail["To"] == "uploads@example.org")
            text = upload.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            for shown in ("ods-0", "Firefox.pkg", "Dev", "100000 bytes", sha256, node.url):
                assert shown in text
    finally:
        smtp.stop()


async def test_a_refusing_smtp_server_gets_the_mail_after_retries_exactly_once(
    tmp_path: Path,
) -> None:
    smtp = SmtpReceiver(tmp_path / "smtp", security="tls", refuse=2)
    smtp.start()
    try:
        with mesh_of(tmp_path, 1, **smtp.env(), ODS_SMTP_RETRY_SECONDS="1") as (node,):
            await node.login()
            subscription = await subscribe(node, "ops@example.org", events=["package.uploaded"])
            random_file(tmp_path / "Retry.pkg", 1000)
            await node.upload(tmp_path / "Retry.pkg")

            async def refused_once() -> bool:
                log = await deliveries(node, subscription)
                return any(item["attempts"] >= 1 and item["error"] for item in log)

            await wait_for("a refused try in the log", 30, refused_once)
            smtp.wait_for(1, timeout=30)
            await asyncio.sleep(3)
            assert smtp.recorder.refused == 2
            assert len(smtp.mails) == 1
            (item,) = await deliveries(node, subscription)
            assert item["status"] == "delivered"
            assert item["attempts"] == 3
    finally:
        smtp.stop()


async def test_mail_pending_at_a_kill_9_is_delivered_after_the_restart(tmp_path: Path) -> None:
    smtp = SmtpReceiver(tmp_path / "smtp")  # not listening yet: every try fails
    with mesh_of(tmp_path, 1, **smtp.env(), ODS_SMTP_RETRY_SECONDS="2") as (node,):
        await node.login()
        subscription = await subscribe(node, "ops@example.org", events=["package.uploaded"])
        random_file(tmp_path / "Pending.pkg", 1000)
        await node.upload(tmp_path / "Pending.pkg")

        async def failed_try() -> bool:
            log = await deliveries(node, subscription)
            return bool(log) and log[0]["attempts"] >= 1 and log[0]["status"] == "pending"

        await wait_for("a failed try", 30, failed_try)
        node.kill()
        smtp.start()
        try:
            started = time.monotonic()
            node.start()
            (mail,) = smtp.wait_for(1, timeout=60)
            await asyncio.sleep(3)
            assert len(smtp.mails) == 1
            assert str(mail["Subject"]).endswith("Package uploaded: Pending.pkg")
            assert time.monotonic() - started < 60
            (item,) = await deliveries(node, subscription)
            assert item["status"] == "delivered"
        finally:
            smtp.stop()
