"""Steps of the notification tests on real `ods serve` processes: a webhook added over
the API, waiting for a receiver, an email subscription."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.helpers.processes.mesh import Node
from tests.helpers.receivers.http import Receiver

SECRET = "an end-to-end webhook secret"


async def add_hook(client: httpx.AsyncClient, receiver: Receiver, *events: str) -> int:
    answer = await client.post(
        "/api/admin/webhooks",
        json={"url": receiver.url, "secret": SECRET, "events": list(events)},
    )
    assert answer.status_code == 201, answer.text
    hook_id: int = answer.json()["id"]
    return hook_id


async def arrived(receiver: Receiver, count: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while len(receiver.received) < count:
        assert time.monotonic() < deadline, f"{receiver.events()}: wanted {count}"
        await asyncio.sleep(0.1)


async def subscribe(node: Node, address: str, **body: Any) -> int:
    async with node.client() as client:
        response = await client.post(
            "/api/admin/email-subscriptions", json={"address": address, **body}
        )
    assert response.status_code == 201, response.text
    subscription_id: int = response.json()["id"]
    return subscription_id
