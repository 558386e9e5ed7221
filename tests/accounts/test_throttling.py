"""Failed logins are throttled per username and address, even with the right password."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from ods.core.config import Settings
from tests.helpers.accounts import FIRST_START
from tests.helpers.api import assert_error, client_for, started


@pytest.fixture
async def throttled_app(settings: Settings) -> AsyncIterator[FastAPI]:
    tight = settings.model_copy(update={"login_max_failures": 3, "login_lockout_seconds": 60})
    async with started(tight) as application:
        yield application


async def test_failed_logins_are_throttled_even_with_the_right_password(
    throttled_app: FastAPI,
) -> None:
    wrong = {"username": "admin", "password": "guess"}
    async with client_for(throttled_app) as c:
        for _ in range(3):
            assert_error(await c.post("/api/auth/login", json=wrong), 401, "unauthorized")
        refused = await c.post("/api/auth/login", json=FIRST_START)
        body = assert_error(refused, 429, "too_many_requests")
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 61
        assert f"{retry_after} seconds" in body["message"]
        assert_error(await c.post("/api/auth/login", json=wrong), 429, "too_many_requests")


async def test_throttling_is_per_username_and_address(throttled_app: FastAPI) -> None:
    wrong = {"username": "admin", "password": "guess"}
    async with client_for(throttled_app, "192.0.2.10") as attacker:
        for _ in range(3):
            await attacker.post("/api/auth/login", json=wrong)
        assert (await attacker.post("/api/auth/login", json=wrong)).status_code == 429
        other_user = await attacker.post(
            "/api/auth/login", json={"username": "someone", "password": "guess"}
        )
        assert_error(other_user, 401, "unauthorized")
        same_user_other_case = await attacker.post(
            "/api/auth/login", json={"username": "ADMIN", "password": "guess"}
        )
        assert_error(same_user_other_case, 429, "too_many_requests")
    async with client_for(throttled_app, "192.0.2.20") as operator:
        response = await operator.post("/api/auth/login", json=FIRST_START)
        assert response.status_code == 200


async def test_a_successful_login_resets_the_failure_count(throttled_app: FastAPI) -> None:
    wrong = {"username": "admin", "password": "guess"}
    async with client_for(throttled_app) as c:
        for _ in range(2):
            await c.post("/api/auth/login", json=wrong)
        assert (await c.post("/api/auth/login", json=FIRST_START)).status_code == 200
        for _ in range(2):
            assert_error(await c.post("/api/auth/login", json=wrong), 401, "unauthorized")
        assert (await c.post("/api/auth/login", json=FIRST_START)).status_code == 200
