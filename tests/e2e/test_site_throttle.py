"""A site of two `ods serve` processes on one database counts failed logins together."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.helpers.processes.serve import serving

pytestmark = pytest.mark.e2e

PASSWORD = "Correct-Horse-Battery-9"


async def test_failed_logins_are_counted_by_every_process_of_a_site(tmp_path: Path) -> None:
    """Wrong logins alternate between the two processes (as Nginx spreads them): the third
    reaches the limit of three, so the fourth is refused by either process, even with the
    right password. Counted per process, each would have seen two."""
    data = tmp_path / "data"
    env = {"ODS_LOGIN_MAX_FAILURES": "3", "DATABASE_URL": f"sqlite:///{tmp_path / 'site.db'}"}
    with (
        serving(data, admin_password=PASSWORD, **env) as first,
        serving(data, admin_password=PASSWORD, **env) as second,
    ):
        wrong = {"username": "admin", "password": "not-the-password"}
        right = {"username": "admin", "password": PASSWORD}
        async with httpx.AsyncClient() as client:
            for server in (first, second, first):
                answer = await client.post(f"{server.url}/api/auth/login", json=wrong)
                assert answer.status_code == 401, answer.text
            for server in (second, first):
                answer = await client.post(f"{server.url}/api/auth/login", json=right)
                assert answer.status_code == 429, answer.text
                assert answer.json()["error"] == "too_many_requests"
                assert "Too many failed logins for 'admin'" in answer.json()["message"]
