"""Fixtures: settings in a temp data dir, the app on a fresh database, API clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from ods.accounts import passwords
from ods.app import create_app
from ods.core import migrate
from ods.core.config import Settings, load_settings, normalise_database_url
from ods.core.db import create_engine
from tests.helpers import services, slapd
from tests.helpers.api import NEW_PASSWORD, TEST_DATABASE_KEY, login


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    """Argon2id at its lowest cost for the apps run in the test process: every test
    logs in and most change the first-start password, and at the default cost (about
    0.15 s and 64 MiB a hash, on four threads) that was a large share of the suite's
    time. The hashes are still Argon2id hashes checked by the same code; `ods serve`
    processes started by tests keep the defaults."""
    default = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    try:
        yield
    finally:
        passwords._hasher = default


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[services.DatabaseServer]:
    """One MariaDB per test process (xdist worker)."""
    yield from services.serving("mariadb")


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[services.DatabaseServer]:
    """One PostgreSQL per test process (xdist worker)."""
    yield from services.serving("postgresql")


@pytest.fixture(params=services.selected_backends())
def database_backend(request: pytest.FixtureRequest) -> str:
    """sqlite, mariadb or postgresql: every test that needs a database runs on each."""
    backend: str = request.param
    return backend


@pytest.fixture
async def empty_database_url(
    database_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A fresh database without any tables, as a plain URL (sqlite://, mysql://, postgresql://)."""
    if database_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'ods.db'}"
        return
    server: services.DatabaseServer = request.getfixturevalue(f"{database_backend}_server")
    async with server.fresh_database() as url:
        yield url


@pytest.fixture
async def database_url(empty_database_url: str) -> str:
    """A fresh database at the newest schema, without rows: what `ods db upgrade` leaves."""
    engine = create_engine(normalise_database_url(empty_database_url))
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    return empty_database_url


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


@pytest.fixture(scope="session")
def slapd_server() -> Iterator[slapd.Slapd]:
    """One OpenLDAP slapd per test process (xdist worker), for the LDAP login tests."""
    try:
        with slapd.slapd() as server:
            yield server
    except services.ServerError as exc:
        pytest.fail(f"cannot start the slapd test server: {exc}", pytrace=False)
