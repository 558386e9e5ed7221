"""`GET /api/admin/system`, the `_hr` twins, and `GET /api/admin/events`."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
from typing import Any

import httpx
import psutil
import pytest

from ods.core.config import Settings
from ods.core.humanize import duration_hr, iso, size_hr, timestamp

SIZE_FIELDS = (
    "disk_free",
    "disk_total",
    "disk_used",
    "mem_available",
    "mem_total",
    "mem_used",
    "network_bytes_received",
    "network_bytes_sent",
)
SIZE_HR = re.compile(r"(1 byte|\d{1,4} bytes|\d{1,4}\.\d (KB|MB|GB|TB|PB))")
DURATION_HR = re.compile(r"((\d+) days?, )?\d{1,2}:\d\d:\d\d")


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (1023, "1023 bytes"),
        (1024, "1.0 KB"),
        (1536, "1.5 KB"),
        (804300, "785.4 KB"),
        (1048575, "1.0 MB"),
        (1048576, "1.0 MB"),
        (3438044, "3.3 MB"),
        (912183296, "869.9 MB"),
        (60351324160, "56.2 GB"),
        (270465425408, "251.9 GB"),
        (5 * 1024**4, "5.0 TB"),
        (3 * 1024**5, "3.0 PB"),
    ],
)
def test_size_hr(size: int, text: str) -> None:
    assert size_hr(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00:00"),
        (59.9, "0:00:59"),
        (30806, "8:33:26"),
        (86400, "1 day, 0:00:00"),
        (2 * 86400 + 30806, "2 days, 8:33:26"),
    ],
)
def test_duration_hr(seconds: float, text: str) -> None:
    assert duration_hr(seconds) == text


def test_times_are_iso_without_microseconds_and_unix_twins() -> None:
    moment = dt.datetime(2017, 11, 10, 4, 45, 47, 123456)
    assert iso(moment) == "2017-11-10T04:45:47"
    assert timestamp(moment) == 1510289147


async def test_system_information(admin_client: httpx.AsyncClient, settings: Settings) -> None:
    response = await admin_client.get("/api/admin/system")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    expected = {"cpu_count", "uptime", "uptime_hr"} | {
        name for field in SIZE_FIELDS for name in (field, f"{field}_hr")
    }
    assert set(body) == expected

    assert body["cpu_count"] == psutil.cpu_count()
    for field in SIZE_FIELDS:
        assert isinstance(body[field], int), field
        assert body[field] >= 0, field
        assert SIZE_HR.fullmatch(body[f"{field}_hr"]), body[f"{field}_hr"]
        assert body[f"{field}_hr"] == size_hr(body[field])

    disk = shutil.disk_usage(settings.data_dir)
    assert body["disk_total"] == disk.total
    assert abs(body["disk_free"] - disk.free) < 256 * 1024**2
    assert body["disk_used"] <= body["disk_total"]
    assert body["mem_available"] <= body["mem_total"]
    assert body["mem_used"] == body["mem_total"] - body["mem_available"]

    assert isinstance(body["uptime"], int)
    expected_uptime = time.time() - psutil.boot_time()
    assert abs(body["uptime"] - expected_uptime) < 5
    assert DURATION_HR.fullmatch(body["uptime_hr"]), body["uptime_hr"]
    assert body["uptime_hr"] == duration_hr(body["uptime"])


async def test_read_only_users_can_read_system_information(
    admin_client: httpx.AsyncClient,
) -> None:
    created = await admin_client.post(
        "/api/admin/users",
        json={"username": "viewer", "password": "viewer passphrase", "must_change_password": False},
    )
    assert created.status_code == 201
    login = await admin_client.post(
        "/api/auth/login", json={"username": "viewer", "password": "viewer passphrase"}
    )
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    assert (await admin_client.get("/api/admin/system", headers=headers)).status_code == 200


async def test_events_newest_first_with_limit_and_kind(admin_client: httpx.AsyncClient) -> None:
    for name in ("first", "second", "third"):
        await admin_client.post("/api/admin/tokens", json={"name": name})
    response = await admin_client.get("/api/admin/events", params={"limit": 2})
    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["message"] for item in items] == [
        "API token 'third' created",
        "API token 'second' created",
    ]
    for item in items:
        assert set(item) == {
            "id",
            "created",
            "created_ts",
            "kind",
            "message",
            "actor",
            "package_uuid",
        }
        assert item["created_ts"] == timestamp(dt.datetime.fromisoformat(item["created"]))
    changed = await admin_client.get("/api/admin/events", params={"kind": "user.password_changed"})
    assert [item["kind"] for item in changed.json()["items"]] == ["user.password_changed"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"limit": "many"}])
async def test_events_bad_query(admin_client: httpx.AsyncClient, params: dict[str, Any]) -> None:
    response = await admin_client.get("/api/admin/events", params=params)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_input"
    assert response.json()["details"][0]["field"] == "limit"
