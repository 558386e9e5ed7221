"""An in-process server whose webhooks may post to loopback, retrying quickly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from ods.core.config import Settings
from tests.helpers.api import NEW_PASSWORD, login, started


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"webhook_allow": "127.0.0.1", "webhook_retry_seconds": 0.2, "webhook_timeout": 2.0}
    )


@pytest.fixture
async def hook_app(hook_settings: Settings) -> AsyncIterator[FastAPI]:
    async with started(hook_settings) as application:
        yield application


@pytest.fixture
async def hooks(hook_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An admin's client of a server that allows webhooks to 127.0.0.1."""
    transport = httpx.ASGITransport(app=hook_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ods.test") as client:
        token = await login(client, "admin", "ods1234!")
        client.headers["Authorization"] = f"Bearer {token}"
        response = await client.post(
            "/api/auth/password", json={"old_password": "ods1234!", "new_password": NEW_PASSWORD}
        )
        assert response.status_code == 204, response.text
        yield client
