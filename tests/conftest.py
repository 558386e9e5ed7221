"""Fixtures: settings in a temp data dir, the app on a fresh database, API clients."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from ods.app import create_app
from ods.config import Settings, load_settings

NEW_PASSWORD = "a long test passphrase"
TEST_DATABASE_KEY = base64.b64encode(b"k" * 32).decode()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ods.db'}"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("ODS_CONF", raising=False)
    return load_settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        database_key=TEST_DATABASE_KEY,
        secret_key="test-secret",
        max_upload_size=64 * 1024 * 1024,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ods.test") as c:
        yield c


async def login(client: httpx.AsyncClient, username: str, password: str) -> str:
    response = await client.post(
        "/api/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


@pytest.fixture
async def admin_client(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client logged in as admin, first-start password already changed."""
    token = await login(client, "admin", "ods1234!")
    client.headers["Authorization"] = f"Bearer {token}"
    response = await client.post(
        "/api/auth/password",
        json={"old_password": "ods1234!", "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 204, response.text
    return client
