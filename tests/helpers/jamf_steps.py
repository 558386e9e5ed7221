"""Steps the Jamf Pro tests share: configure the integration, wait for records and events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.helpers.jamf_pro import JamfPro


def settings_body(jamf: JamfPro, **changes: Any) -> dict[str, Any]:
    return {
        "url": jamf.url,
        "client_id": jamf.client_id,
        "client_secret": jamf.client_secret,
        "stages": ["Prod"],
        "category": None,
        "enabled": True,
    } | changes


async def configure(client: httpx.AsyncClient, jamf: JamfPro, **changes: Any) -> dict[str, Any]:
    response = await client.put("/api/admin/integrations/jamf", json=settings_body(jamf, **changes))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def until(check: Callable[[], Any], seconds: float = 15.0) -> Any:
    """Wait until `check()` is truthy; its value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"not so after {seconds} s: {check()!r}")


async def events(client: httpx.AsyncClient, kind: str) -> list[dict[str, Any]]:
    response = await client.get("/api/admin/events", params={"kind": kind})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def until_event(client: httpx.AsyncClient, kind: str, count: int = 1) -> list[Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = await events(client, kind)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} {kind} events: {await events(client, kind)}")


async def until_records(client: httpx.AsyncClient, count: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        shown = (await client.get("/api/admin/integrations/jamf")).json()
        if shown["records"] == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"ODS keeps {shown['records']} records, not {count}")
