"""Deliveries from the event log to real receivers: matching, retries, 410, order, safety."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.helpers.notify import SECRET, add_hook
from tests.helpers.packages import content_of, uploaded
from tests.helpers.receivers.http import arrived, receiving


async def deliveries(client: httpx.AsyncClient, hook_id: int) -> list[dict[str, object]]:
    answer = await client.get(f"/api/admin/webhooks/{hook_id}/deliveries")
    assert answer.status_code == 200, answer.text
    items: list[dict[str, object]] = answer.json()["items"]
    return items


async def settled(client: httpx.AsyncClient, hook_id: int, count: int) -> list[dict[str, object]]:
    """The hook's deliveries once `count` of them are no longer pending."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items = await deliveries(client, hook_id)
        if len([i for i in items if i["status"] != "pending"]) >= count:
            return items
        await asyncio.sleep(0.1)
    raise AssertionError(f"not settled: {items}")


async def test_an_upload_reaches_the_matching_webhook_only(hooks: httpx.AsyncClient) -> None:
    with receiving(SECRET) as wanted, receiving(SECRET) as other:
        await add_hook(hooks, wanted, "package.uploaded")
        await add_hook(hooks, other, "package.deleted")
        package = await uploaded(hooks, "Tool.pkg", content_of(4096))
        (item,) = await arrived(wanted, 1)
        assert item.signature_ok is True
        body = item.json
        assert body["event"] == "package.uploaded"
        data = body["data"]
        assert data["uuid"] == package["uuid"]
        assert len(data["uuid"]) == 32
        assert data["filename"] == "Tool.pkg"
        assert data["stage"] == "Prod"
        for name in ("status", "file_size", "sha1", "sha256"):
            assert name in data
        await asyncio.sleep(1.5)
        assert other.received == []
        assert len(wanted.received) == 1


async def test_a_receiver_failing_three_times_gets_the_event_once(
    hooks: httpx.AsyncClient,
) -> None:
    with receiving(SECRET) as receiver:
        receiver.answers = [500, 503, 502]
        hook_id = await add_hook(hooks, receiver, "package.uploaded")
        await uploaded(hooks, "Retry.pkg", content_of(1024))
        (item,) = await settled(hooks, hook_id, 1)
        assert item["status"] == "delivered"
        assert item["attempts"] == 4
        assert item["response_status"] == 200
        assert len(receiver.received) == 4
        ids = {r.json["id"] for r in receiver.received}
        assert ids == {item["id"]}
        await asyncio.sleep(1.5)
        assert len(receiver.received) == 4


async def test_a_410_disables_the_webhook_with_an_event(hooks: httpx.AsyncClient) -> None:
    with receiving(SECRET) as receiver:
        receiver.then = 410
        hook_id = await add_hook(hooks, receiver, "package.uploaded")
        await uploaded(hooks, "Gone.pkg", content_of(1024))
        (item,) = await settled(hooks, hook_id, 1)
        assert item["status"] == "failed"
        assert item["response_status"] == 410
        hook = (await hooks.get(f"/api/admin/webhooks/{hook_id}")).json()
        assert hook["enabled"] is False
        assert "410" in hook["disabled_reason"]
        events = (await hooks.get("/api/admin/events?kind=webhook.disabled")).json()["items"]
        assert events[0]["data"]["webhook_id"] == hook_id
        await uploaded(hooks, "Later.pkg", content_of(1024, seed=1))
        await asyncio.sleep(1.5)
        assert len(receiver.received) == 1


async def test_events_of_one_webhook_arrive_in_order_while_one_is_retried(
    hooks: httpx.AsyncClient,
) -> None:
    with receiving(SECRET) as receiver:
        receiver.answers = [500, 500]
        hook_id = await add_hook(hooks, receiver, "package.uploaded")
        names = [f"Order{n}.pkg" for n in range(4)]
        for n, name in enumerate(names):
            await uploaded(hooks, name, content_of(512, seed=n))
        await settled(hooks, hook_id, 4)
        delivered = [r.json["data"]["filename"] for r in receiver.received if r.json]
        firsts = list(dict.fromkeys(delivered))
        assert firsts == names
        assert delivered[:3] == [names[0]] * 3


async def test_redirects_are_not_followed(hooks: httpx.AsyncClient) -> None:
    with receiving(SECRET) as target, receiving(SECRET) as receiver:
        receiver.then = f"redirect:{target.url}"
        hook_id = await add_hook(hooks, receiver)
        outcome = (await hooks.post(f"/api/admin/webhooks/{hook_id}/test")).json()
        assert outcome["status"] == "failed"
        assert outcome["response_status"] == 302
        assert "not followed" in outcome["error"]
        assert target.received == []


async def test_a_receiver_that_hangs_times_out(hooks: httpx.AsyncClient) -> None:
    with receiving(SECRET) as receiver:
        receiver.then = "hang"
        hook_id = await add_hook(hooks, receiver)
        started = time.monotonic()
        outcome = (await hooks.post(f"/api/admin/webhooks/{hook_id}/test")).json()
        assert time.monotonic() - started < 6
        assert outcome["status"] == "failed"
        assert "no answer" in outcome["error"]


async def test_a_receiver_streaming_forever_is_read_only_up_to_the_cap(
    hooks: httpx.AsyncClient,
) -> None:
    with receiving(SECRET) as receiver:
        receiver.then = "stream"
        hook_id = await add_hook(hooks, receiver)
        started = time.monotonic()
        outcome = (await hooks.post(f"/api/admin/webhooks/{hook_id}/test")).json()
        assert time.monotonic() - started < 6
        assert outcome["status"] == "delivered"
        await asyncio.sleep(0.5)
        # The connection is closed after the cap: the receiver stops, far short of its 6.5 GB.
        sent = receiver.streamed_bytes
        await asyncio.sleep(0.5)
        assert receiver.streamed_bytes == sent
        assert sent < 64 * 1024 * 1024


async def test_slack_and_teams_bodies_are_unsigned_one_liners_with_a_console_link(
    hooks: httpx.AsyncClient,
) -> None:
    about = {"name": "ods-a", "url": "https://ods-a.example"}
    assert (await hooks.post("/api/admin/about/update", json=about)).status_code == 201
    with receiving() as slack, receiving() as teams:
        for receiver, fmt in ((slack, "slack"), (teams, "teams")):
            answer = await hooks.post(
                "/api/admin/webhooks",
                json={"url": receiver.url, "format": fmt, "events": ["package.uploaded"]},
            )
            assert answer.status_code == 201, answer.text
        await uploaded(hooks, "Chat.pkg", content_of(2048))
        (s,) = await arrived(slack, 1)
        (t,) = await arrived(teams, 1)
    assert "x-ods-signature-256" not in s.headers
    assert "x-ods-signature-256" not in t.headers
    text = s.json["text"]
    assert text.startswith("<https://ods-a.example/|ods-a>: Chat.pkg uploaded")
    assert "\n" not in text
    card = t.json["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert "Chat.pkg uploaded" in card["content"]["body"][0]["text"]
    assert card["content"]["actions"][0]["url"] == "https://ods-a.example/"
