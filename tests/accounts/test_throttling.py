"""Failed logins are throttled per username and address, even with the right password."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from ods.core.config import Settings
from ods.core.context import Context
from ods.core.models import Event
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


async def test_concurrent_wrong_logins_cannot_pass_the_limit_together(
    throttled_app: FastAPI,
) -> None:
    wrong = {"username": "admin", "password": "guess"}
    async with client_for(throttled_app) as c:
        answers = await asyncio.gather(*(c.post("/api/auth/login", json=wrong) for _ in range(30)))
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses.count(401) == 3
        assert statuses.count(429) == 27


async def test_a_burst_ending_with_the_right_password_does_not_log_in(
    throttled_app: FastAPI,
) -> None:
    wrong = {"username": "admin", "password": "guess"}
    async with client_for(throttled_app) as c:
        burst = [c.post("/api/auth/login", json=wrong) for _ in range(20)]
        burst.append(c.post("/api/auth/login", json=FIRST_START))
        answers = await asyncio.gather(*burst)
        assert answers[-1].status_code == 429
        assert all(answer.status_code in (401, 429) for answer in answers)


async def test_spraying_one_password_over_many_users_is_throttled_per_address(
    settings: Settings,
) -> None:
    tight = settings.model_copy(
        update={"login_max_failures": 5, "login_max_failures_per_address": 8}
    )
    async with started(tight) as application:
        async with client_for(application, "192.0.2.30") as sprayer:
            statuses = []
            for round_ in range(5):
                for user in ("admin", "alice", "bob", "carol"):
                    answer = await sprayer.post(
                        "/api/auth/login", json={"username": user, "password": f"Winter{round_}"}
                    )
                    statuses.append(answer.status_code)
            assert statuses[:8] == [401] * 8
            assert set(statuses[8:]) == {429}
        async with client_for(application, "192.0.2.31") as elsewhere:
            assert (await elsewhere.post("/api/auth/login", json=FIRST_START)).status_code == 200


async def test_guessing_the_old_password_with_a_token_is_throttled_and_recorded(
    throttled_app: FastAPI,
) -> None:
    async with client_for(throttled_app, "192.0.2.40") as c:
        login = await c.post("/api/auth/login", json=FIRST_START)
        c.headers["Authorization"] = f"Bearer {login.json()['token']}"
        statuses = []
        for guess in range(6):
            answer = await c.post(
                "/api/auth/password",
                json={"old_password": f"guess {guess}", "new_password": "a long new passphrase"},
            )
            statuses.append(answer.status_code)
        assert statuses == [403, 403, 403, 429, 429, 429]
        right = await c.post(
            "/api/auth/password",
            json={"old_password": FIRST_START["password"], "new_password": "a long new passphrase"},
        )
        assert_error(right, 429, "too_many_requests")
    context: Context = throttled_app.state.context
    async with context.db.session() as session:
        recorded = (
            await session.execute(
                select(Event.data).where(Event.kind == "user.password_check_failed")
            )
        ).scalars()
        data = [json.loads(item) for item in recorded if item]
    assert data == [{"username": "admin", "address": "192.0.2.40"}] * 3
