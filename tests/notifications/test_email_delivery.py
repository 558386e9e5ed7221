"""Events become mail: matching subscribers only, digests, retries (in-process app, real SMTP)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from ods.core.models import EmailDelivery, EmailItem, utcnow
from tests.helpers.packages import content_of, uploaded
from tests.helpers.receivers.smtp import SmtpReceiver

PATH = "/api/admin/email-subscriptions"


async def subscribe(client: httpx.AsyncClient, address: str, **body: Any) -> int:
    response = await client.post(PATH, json={"address": address, **body})
    assert response.status_code == 201, response.text
    subscription_id: int = response.json()["id"]
    return subscription_id


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def log_of(client: httpx.AsyncClient, subscription_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"{PATH}/{subscription_id}/deliveries")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def recipients(smtp: SmtpReceiver) -> list[tuple[str, str]]:
    return sorted((str(mail["To"]), str(mail["Subject"])) for mail in smtp.mails)


async def test_upload_stage_change_and_delete_reach_the_matching_subscribers(
    admin_client: httpx.AsyncClient, smtp: SmtpReceiver
) -> None:
    await subscribe(admin_client, "uploads@example.org", events=["package.uploaded"])
    changes = await subscribe(
        admin_client, "changes@example.org", events=["package.stage_changed", "package.deleted"]
    )
    await subscribe(admin_client, "failures@example.org", events=["package.failed"])
    content = content_of(70_000, seed=3)
    package = await uploaded(admin_client, "Fancy <App>.pkg", content, stage="Test")
    response = await admin_client.patch(
        f"/api/admin/packages/{package['id']}", json={"stage": "Prod"}
    )
    assert response.status_code == 200, response.text
    assert (await admin_client.delete(f"/api/admin/packages/{package['id']}")).status_code == 204
    await smtp.arrived(3)
    await asyncio.sleep(3)  # a mailer round or two more: nothing else arrives
    assert recipients(smtp) == [
        ("changes@example.org", "[ODS] Package deleted: Fancy <App>.pkg"),
        ("changes@example.org", "[ODS] Package stage changed: Fancy <App>.pkg"),
        ("uploads@example.org", "[ODS] Package uploaded: Fancy <App>.pkg"),
    ]
    upload_mail = next(mail for mail in smtp.mails if mail["To"] == "uploads@example.org")
    text = upload_mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = upload_mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    sha256 = hashlib.sha256(content).hexdigest()
    for shown in ("Fancy <App>.pkg", "Test", "70000 bytes", sha256):
        assert shown in text
    assert "Fancy &lt;App&gt;.pkg" in html
    assert "<App>" not in html
    assert sha256 in html
    log = await log_of(admin_client, changes)
    assert [(item["event"], item["status"], item["attempts"]) for item in log] == [
        ("package.deleted", "delivered", 1),
        ("package.stage_changed", "delivered", 1),
    ]
    assert all(len(item["events"]) == 1 for item in log)


async def test_a_digest_gathers_the_events_of_its_interval_into_one_mail(
    admin_client: httpx.AsyncClient, app: FastAPI, smtp: SmtpReceiver
) -> None:
    digest = await subscribe(
        admin_client, "digest@example.org", events=["package.uploaded"], digest_minutes=60
    )
    for number in range(3):
        await uploaded(admin_client, f"Tool{number}.pkg", content_of(1000, seed=number))
    db = app.state.context.db

    async def items_waiting() -> bool:
        async with db.session() as session:
            rows = (await session.scalars(EmailItem.__table__.select())).all()
        return len(rows) == 3

    await eventually(items_waiting)
    await asyncio.sleep(3)
    assert smtp.mails == []
    assert await log_of(admin_client, digest) == []
    # The interval has passed (as if an hour went by).
    async with db.transaction() as session:
        await session.execute(update(EmailItem).values(created=utcnow() - dt.timedelta(minutes=61)))
    [mail] = await smtp.arrived(1)
    assert mail["Subject"] == "[ODS] 3 events: package uploaded"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert all(f"Tool{number}.pkg" in text for number in range(3))

    async def recorded() -> list[dict[str, Any]]:
        # The mail is in before the delivery's row says so: wait for the row too.
        log = await log_of(admin_client, digest)
        return log if [item["status"] for item in log] == ["delivered"] else []

    [delivery] = await eventually(recorded)
    assert delivery["event"] == "digest"
    assert len(delivery["events"]) == 3


async def test_a_refused_mail_is_retried_with_back_off_and_arrives_once(
    admin_client: httpx.AsyncClient, app: FastAPI, smtp: SmtpReceiver
) -> None:
    smtp.recorder.refuse = 2
    sub = await subscribe(admin_client, "retry@example.org", events=["package.uploaded"])
    tried_after = utcnow()
    await uploaded(admin_client, "Retry.pkg", content_of(500))
    db = app.state.context.db
    for tries in (1, 2):

        async def failed_try(tries: int = tries) -> list[dict[str, Any]]:
            log = await log_of(admin_client, sub)
            return [item for item in log if item["attempts"] == tries]

        [item] = await eventually(failed_try)
        assert item["status"] == "pending"
        assert "451" in item["error"]
        # The try was made between `tried_after` and now, and waits 10 s, then 20 s,
        # each +-25 %; MariaDB keeps whole seconds.
        next_attempt = dt.datetime.fromisoformat(item["next_attempt"])
        expected = dt.timedelta(seconds=10 * 2 ** (tries - 1))
        second = dt.timedelta(seconds=1)
        assert tried_after + expected * 0.75 - second <= next_attempt
        assert next_attempt <= utcnow() + expected * 1.25 + second
        # Its time has come (as if the back-off had passed).
        tried_after = utcnow()
        async with db.transaction() as session:
            await session.execute(update(EmailDelivery).values(next_attempt=utcnow()))
    [mail] = await smtp.arrived(1)
    assert mail["Subject"] == "[ODS] Package uploaded: Retry.pkg"
    await asyncio.sleep(3)
    assert len(smtp.mails) == 1
    [item] = await log_of(admin_client, sub)
    assert (item["status"], item["attempts"], item["error"]) == ("delivered", 3, None)
