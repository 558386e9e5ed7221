"""Talking to an in-process app: test settings, logging in, clients, the error shape."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from ods.app import create_app
from ods.core.config import Settings

NEW_PASSWORD = "a long test passphrase"
TEST_DATABASE_KEY = base64.b64encode(b"k" * 32).decode()
ERROR_KEYS = {"error", "message", "details"}


async def login(client: httpx.AsyncClient, username: str, password: str) -> str:
    response = await client.post(
        "/api/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def anonymous(app: FastAPI) -> httpx.AsyncClient:
    """A client with no credentials, beside the fixtures' logged-in one."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ods.test")


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app on these settings, its lifespan running."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@asynccontextmanager
async def client_for(
    application: FastAPI, address: str = "127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    """A client that the app sees coming from `address`."""
    transport = httpx.ASGITransport(app=application, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ods.test") as c:
        yield c


def assert_error(
    response: httpx.Response, status: int, code: str, *words: str, where: str = ""
) -> dict[str, Any]:
    """The response is the API's one error shape with this status and code.

    That is: JSON, exactly the keys error, message and details, a message that
    is not blank and names every word given (case-insensitively), and details
    that are null or a list. `where` goes in front of every failure, for tests
    that loop over many requests. Returns the body.
    """
    label = f"{where}: " if where else ""
    assert response.status_code == status, f"{label}{response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/json", f"{label}{response.headers}"
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS, f"{label}{body}"
    assert body["error"] == code, f"{label}{body}"
    message = body["message"]
    assert isinstance(message, str), f"{label}{body}"
    assert message.strip(), f"{label}{body}"
    for word in words:
        assert word.lower() in message.lower(), f"{label}{word!r} not in {message!r}"
    assert body["details"] is None or isinstance(body["details"], list), f"{label}{body}"
    return body
