"""The app of the notification tests sends its mail to a real SMTP server on loopback, and
the webhook tests' server may post to loopback, retrying quickly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from ods.core.config import Settings
from tests.helpers.api import NEW_PASSWORD, login, started
from tests.helpers.receivers.smtp import SmtpReceiver


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver(tmp_path, security="starttls").start()
    yield receiver
    receiver.stop()


@pytest.fixture
def settings(settings: Settings, smtp: SmtpReceiver) -> Settings:
    env = smtp.env()
    return settings.model_copy(
        update={
            "smtp_host": env["ODS_SMTP_HOST"],
            "smtp_port": int(env["ODS_SMTP_PORT"]),
            "smtp_security": env["ODS_SMTP_SECURITY"],
            "smtp_from": env["ODS_SMTP_FROM"],
            "smtp_ca_file": Path(env["ODS_SMTP_CA_FILE"]),
            "smtp_timeout": 10,
        }
    )


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
