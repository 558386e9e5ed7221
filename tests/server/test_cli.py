"""The `ods` command, run as real processes of this environment's `ods` script."""

from __future__ import annotations

import base64
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

import ods
from ods.app import create_app
from ods.core.config import Settings, env_names, load_settings
from tests.helpers.processes.serve import free_port

ODS = Path(sys.executable).with_name("ods")
VARIABLES = {name for field in Settings.model_fields.values() for name in env_names(field)}
OTHER_KEY = base64.b64encode(b"o" * 32).decode()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli_env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process's environment without ODS settings, DATA_DIR in tmp_path.

    The same environment is set on this process, so settings loaded in the test
    see what the commands saw.
    """
    for name in [*VARIABLES, "ODS_CONF"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    return dict(os.environ)


def ods_run(
    env: dict[str, str], *args: str, stdin: str | None = None, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ODS), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env | extra_env,
        timeout=60,
        check=False,
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], status: int, start: str) -> str:
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(start), lines[0]
    return lines[0]


@asynccontextmanager
async def api() -> AsyncIterator[httpx.AsyncClient]:
    """The API of the server the commands prepared, in this process."""
    application = create_app(load_settings())
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://ods.test") as c:
            yield c


async def login_status(username: str, password: str) -> tuple[int, dict[str, object]]:
    async with api() as c:
        response = await c.post(
            "/api/auth/login", json={"username": username, "password": password}
        )
    body: dict[str, object] = response.json()
    return response.status_code, body


def test_version(cli_env: dict[str, str]) -> None:
    result = ods_run(cli_env, "--version")
    assert result.returncode == 0
    assert result.stdout == f"ods {ods.__version__}\n"


def test_python_m_ods_version(cli_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ods", "--version"],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout == f"ods {ods.__version__}\n"


def test_no_command_prints_usage(cli_env: dict[str, str]) -> None:
    result = ods_run(cli_env)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: ods")
    assert "Traceback" not in result.stderr


def test_db_upgrade_creates_the_schema_and_can_run_again(
    cli_env: dict[str, str], data_dir: Path
) -> None:
    first = ods_run(cli_env, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert "Database schema is current." in first.stdout
    with sqlite3.connect(data_dir / "ods.db") as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        users = connection.execute("SELECT COUNT(*) FROM users").fetchone()
    assert {"alembic_version", "server", "users", "tokens", "packages", "events"} <= tables
    assert users == (0,)
    again = ods_run(cli_env, "db", "upgrade")
    assert again.returncode == 0, again.stderr


async def test_user_create_then_log_in_through_the_api(cli_env: dict[str, str]) -> None:
    result = ods_run(
        cli_env,
        "user",
        "create",
        "alice",
        "--role",
        "package_manager",
        "--password-stdin",
        stdin="alice's passphrase\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "User alice created with role package_manager."
    status, body = await login_status("alice", "alice's passphrase")
    assert status == 200, body
    assert body["role"] == "package_manager"
    assert body["must_change_password"] is False


async def test_an_admin_made_first_leaves_no_documented_password_account(
    cli_env: dict[str, str],
) -> None:
    result = ods_run(
        cli_env, "user", "create", "root", "--password-stdin", stdin="root passphrase\n"
    )
    assert result.returncode == 0, result.stderr
    assert "role admin" in result.stdout
    assert (await login_status("root", "root passphrase"))[0] == 200
    assert (await login_status("admin", "ods1234!"))[0] == 401


def test_user_create_twice_is_refused(cli_env: dict[str, str]) -> None:
    args = ("user", "create", "alice", "--password-stdin")
    assert ods_run(cli_env, *args, stdin="alice passphrase\n").returncode == 0
    again = ods_run(cli_env, *args, stdin="other passphrase\n")
    line = assert_one_error_line(again, 1, "ods: ")
    assert "exists already" in line


@pytest.mark.parametrize(
    ("username", "password", "says"),
    [
        ("bad name", "a good passphrase", "username"),
        ("alice", "short", "at least 8"),
        ("alice", "", "at least 8"),
        ("alice", "ods1234!", "first-start"),
    ],
)
def test_user_create_with_bad_input(
    cli_env: dict[str, str], username: str, password: str, says: str
) -> None:
    result = ods_run(cli_env, "user", "create", username, "--password-stdin", stdin=password + "\n")
    assert says in assert_one_error_line(result, 1, "ods: ")


def test_user_create_with_an_unknown_role(cli_env: dict[str, str]) -> None:
    result = ods_run(cli_env, "user", "create", "alice", "--role", "root", "--password-stdin")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


async def test_user_passwd(cli_env: dict[str, str]) -> None:
    created = ods_run(
        cli_env, "user", "create", "alice", "--password-stdin", stdin="first passphrase\n"
    )
    assert created.returncode == 0, created.stderr
    changed = ods_run(
        cli_env, "user", "passwd", "alice", "--password-stdin", stdin="second passphrase\r\n"
    )
    assert changed.returncode == 0, changed.stderr
    assert "alice" in changed.stdout
    status, body = await login_status("alice", "second passphrase")
    assert status == 200
    assert body["must_change_password"] is False
    assert (await login_status("alice", "first passphrase"))[0] == 401


async def test_user_passwd_resets_the_first_start_admin(cli_env: dict[str, str]) -> None:
    async with api() as c:
        response = await c.post(
            "/api/auth/login", json={"username": "admin", "password": "ods1234!"}
        )
        assert response.json()["must_change_password"] is True
    result = ods_run(
        cli_env, "user", "passwd", "admin", "--password-stdin", stdin="recovered passphrase\n"
    )
    assert result.returncode == 0, result.stderr
    status, body = await login_status("admin", "recovered passphrase")
    assert status == 200
    assert body["must_change_password"] is False


def test_user_passwd_of_an_unknown_user(cli_env: dict[str, str]) -> None:
    result = ods_run(
        cli_env, "user", "passwd", "nobody", "--password-stdin", stdin="some passphrase\n"
    )
    assert "No user named 'nobody'" in assert_one_error_line(result, 1, "ods: ")


@pytest.mark.parametrize(
    "args",
    [
        ("db", "upgrade"),
        ("serve", "--port", "1"),
        ("user", "create", "alice", "--password-stdin"),
        ("user", "passwd", "alice", "--password-stdin"),
    ],
)
@pytest.mark.parametrize("key", ["c2hvcnQ=", "not base64!"])
def test_bad_database_key_is_one_line_naming_it(
    cli_env: dict[str, str], args: tuple[str, ...], key: str
) -> None:
    result = ods_run(cli_env, *args, stdin="a passphrase\n", DATABASE_KEY=key)
    line = assert_one_error_line(result, 2, "ods: configuration error: DATABASE_KEY: ")
    assert key not in line
    assert result.stdout == ""


def test_unknown_key_in_the_conf_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    conf = tmp_path / "ods.conf"
    conf.write_text("# settings\nDATABASE_URI = sqlite:///x.db\n")
    result = ods_run(cli_env, "db", "upgrade", ODS_CONF=str(conf))
    assert_one_error_line(result, 2, "ods: configuration error: DATABASE_URI: ")


def test_bad_size_setting(cli_env: dict[str, str]) -> None:
    result = ods_run(cli_env, "serve", ODS_MAX_UPLOAD_SIZE="twenty gigs")
    assert_one_error_line(result, 2, "ods: configuration error: ODS_MAX_UPLOAD_SIZE: ")


@pytest.mark.parametrize("args", [("db", "upgrade"), ("serve", "--port", "1")])
def test_unreachable_database_is_one_line_without_the_password(
    cli_env: dict[str, str], args: tuple[str, ...]
) -> None:
    url = f"postgresql://ods:hunter2@127.0.0.1:{free_port()}/ods"
    result = ods_run(cli_env, *args, DATABASE_URL=url)
    line = assert_one_error_line(result, 2, "ods: configuration error: DATABASE_URL: ")
    assert "cannot connect" in line
    assert "hunter2" not in result.stderr


def test_unreachable_mysql_server_is_named(cli_env: dict[str, str]) -> None:
    result = ods_run(
        cli_env,
        "db",
        "upgrade",
        MYSQL_SERVER=f"127.0.0.1:{free_port()}",
        MYSQL_DATABASE="ods",
        MYSQL_USER="ods",
        MYSQL_PASSWORD="hunter2",
    )
    assert_one_error_line(result, 2, "ods: configuration error: MYSQL_SERVER: ")
    assert "hunter2" not in result.stderr


def test_unreachable_redis_is_named(cli_env: dict[str, str]) -> None:
    result = ods_run(
        cli_env, "serve", "--port", "1", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"
    )
    assert_one_error_line(result, 2, "ods: configuration error: REDIS_URL: ")


async def test_serve_refuses_a_database_key_the_database_was_not_made_with(
    cli_env: dict[str, str],
) -> None:
    async with api() as c:
        assert (await c.get("/readyz")).status_code == 200
    result = ods_run(cli_env, "serve", "--port", "1", DATABASE_KEY=OTHER_KEY)
    assert_one_error_line(result, 2, "ods: configuration error: DATABASE_KEY: ")


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_serve_refuses_a_bad_port(cli_env: dict[str, str], port: str) -> None:
    result = ods_run(cli_env, "serve", "--port", port)
    assert result.returncode == 2
    assert "not a port number" in result.stderr


@pytest.mark.e2e
def test_serve_answers_and_stops_cleanly_on_sigterm(
    cli_env: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [str(ODS), "serve", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=cli_env,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                health = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health is not None, "ods serve did not answer within 60 seconds"
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready"}
        login = httpx.post(
            f"{base}/api/auth/login",
            json={"username": "admin", "password": "ods1234!"},
            timeout=10,
        )
        assert login.status_code == 200
        assert login.json()["must_change_password"] is True

        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # uvicorn shuts down gracefully, then ends by the signal it caught, as supervisors expect.
    assert process.returncode in (0, -signal.SIGTERM), log.read_text()
    assert f"listening on http://127.0.0.1:{port}" in stdout
    assert f"Data dir: {data_dir.resolve()}" in stdout
    errors = log.read_text()
    assert "Traceback" not in errors
    assert "Application shutdown complete" in errors


def test_serve_listens_with_a_small_unsent_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import uvicorn

    from ods.cli import SEND_LOWAT, _listen
    from ods.core import platform

    monkeypatch.setattr(platform, "IN_USE", platform.detect())  # even with ODS_PORTABLE_IO

    config = uvicorn.Config(app=lambda: None, host="127.0.0.1", port=0)
    listener = _listen(config)
    listener.listen()  # uvicorn does this when it starts serving
    try:
        with socket.create_connection(listener.getsockname()[:2]):
            accepted, _ = listener.accept()
            with accepted:
                lowat = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT)
                assert lowat == SEND_LOWAT
    finally:
        listener.close()
