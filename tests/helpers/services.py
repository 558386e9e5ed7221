"""Real MariaDB and PostgreSQL servers for the test run, and which backends it uses.

Each server runs from Debian's packages on 127.0.0.1, on a free port, with its
data in a temp dir that is removed when the server stops. A test gets its own
database on the shared server (`DatabaseServer.fresh_database`). The servers
are tuned for throwaway data: no fsync, no binary log, small buffers. They run
under `setpriv --pdeathsig KILL` (Linux, util-linux), so a test run that is
killed does not leave them behind. Where there is no setpriv they are stopped
when the test process exits; a test run ended by a signal it does not catch
(SIGKILL, SIGTERM) leaves them running there. ODS_TEST_BACKENDS (a comma
list) picks the backends; all by default.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from ods.core.config import normalise_database_url

USER = "ods"
PASSWORD = "ods-test-password"
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
PORT_ATTEMPTS = 5
UNKNOWN_THREAD_ID = 1094


class ServerError(Exception):
    """A test database server could not be set up; the message says why."""


class PortTaken(ServerError):
    """Another process took the port between choosing and binding it."""


@dataclass(frozen=True)
class DatabaseServer:
    """A running server: where it listens and how to log in."""

    backend: str
    port: int
    maintenance_database: str
    host: str = HOST
    user: str = USER
    password: str = PASSWORD

    def url(self, database: str) -> str:
        """A plain URL, as an admin writes it; ODS adds the async driver."""
        scheme = "mysql" if self.backend == "mariadb" else "postgresql"
        return f"{scheme}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    @contextlib.asynccontextmanager
    async def fresh_database(self) -> AsyncIterator[str]:
        """A new, empty database with a unique name, dropped afterwards."""
        name = f"ods_test_{uuid.uuid4().hex}"
        engine = create_async_engine(
            normalise_database_url(self.url(self.maintenance_database)),
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
        )
        try:
            async with engine.connect() as connection:
                await connection.execute(text(f"CREATE DATABASE {name}"))
            yield self.url(name)
            async with engine.connect() as connection:
                await self._drop(connection, name)
        finally:
            await engine.dispose()

    async def _drop(self, connection: AsyncConnection, name: str) -> None:
        if self.backend == "postgresql":
            await connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
            return
        # A connection left open would hold a metadata lock and block the drop.
        left_open = await connection.execute(
            text("SELECT id FROM information_schema.processlist WHERE db = :name"),
            {"name": name},
        )
        for (thread_id,) in left_open.all():
            try:
                await connection.execute(text(f"KILL CONNECTION {int(thread_id)}"))
            except OperationalError as exc:
                # The connection was on its way out already: "Unknown thread id".
                if getattr(exc.orig, "args", (None,))[0] != UNKNOWN_THREAD_ID:
                    raise
        await connection.execute(text(f"DROP DATABASE {name}"))


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass(frozen=True)
class RunAs:
    """How a server runs: as this user, or as a system user when we are root.

    With `setpriv` (Linux) the server is killed when the test process dies,
    however it dies. Without it the server is stopped at the test process's
    exit (`start` registers that), and Python itself switches the user.
    """

    setpriv: str | None
    user: str | None = None

    @classmethod
    def for_server(cls, system_user: str | None, package: str) -> RunAs:
        setpriv = shutil.which("setpriv")
        if system_user is None or not is_root():
            return cls(setpriv)
        import pwd  # POSIX only, like being root

        try:
            pwd.getpwnam(system_user)
        except KeyError:
            raise ServerError(
                f"the system user {system_user!r} is missing; it comes with the Debian "
                f"package {package} (apt-get install {package})"
            ) from None
        return cls(setpriv, system_user)

    @property
    def dies_with_us(self) -> bool:
        """Whether the server is killed when the test process dies, even by SIGKILL."""
        return self.setpriv is not None

    def command(self, command: Sequence[str]) -> list[str]:
        if self.setpriv is None:
            return list(command)
        prefix = [self.setpriv, "--pdeathsig", "KILL"]
        if self.user is not None:
            prefix += [f"--reuid={self.user}", f"--regid={self.user}", "--clear-groups"]
        return [*prefix, "--", *command]

    def options(self) -> dict[str, Any]:
        """Arguments to subprocess that switch the user where setpriv does not."""
        if self.setpriv is not None or self.user is None:
            return {}
        return {"user": self.user, "group": self.user, "extra_groups": []}

    def own(self, path: Path) -> None:
        if self.user is not None:
            shutil.chown(path, self.user, self.user)


def require(found: str | None, program: str, package: str) -> str:
    if found is None:
        raise ServerError(
            f"{program} is not installed: the tests need the Debian package {package} "
            f"(apt-get install {package}, or run scripts/test, which installs it)"
        )
    return found


def which(program: str) -> str | None:
    """A program on PATH, or in the sbin dirs that a non-root PATH often lacks."""
    return shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/local/sbin")


def postgresql_bin_dir() -> Path:
    """The bin dir of the newest PostgreSQL that Debian's postgresql package installed."""

    def version(bin_dir: Path) -> int:
        name = bin_dir.parent.name
        return int(name) if name.isdigit() else 0

    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/postgres")),
        key=version,
    )
    for bin_dir in reversed(found):
        if (bin_dir / "initdb").exists():
            return bin_dir
    require(None, "PostgreSQL (initdb and postgres)", "postgresql")
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run(
    command: Sequence[str], cwd: Path, log: Path, what: str, run_as: RunAs | None = None
) -> None:
    """Run a set-up command to its end; ServerError if it fails."""
    argv = run_as.command(command) if run_as is not None else list(command)
    options = run_as.options() if run_as is not None else {}
    with log.open("ab") as output:
        try:
            result = subprocess.run(
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=START_TIMEOUT,
                **options,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise ServerError(f"{what} could not run: {exc}") from None
    if result.returncode != 0:
        raise ServerError(f"{what} failed (exit {result.returncode}):\n{tail(log)}")


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    stop_signal: signal.Signals

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self.popen.poll() is None:
            self.popen.send_signal(self.stop_signal)
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start(
    command: Sequence[str],
    cwd: Path,
    log: Path,
    stop_signal: signal.Signals,
    is_ready: Callable[[], bool],
    what: str,
    run_as: RunAs,
) -> Process:
    """Start a server and wait until it answers; PortTaken if its port was taken."""
    with log.open("ab") as output:
        try:
            popen = subprocess.Popen(
                run_as.command(command),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                **run_as.options(),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise ServerError(f"{what} could not start: {exc}") from None
    process = Process(popen, stop_signal)
    if not run_as.dies_with_us:
        # The next best thing to dying with the test process: stopping when it exits.
        atexit.register(process.stop)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            logged = tail(log)
            if "already in use" in logged:
                raise PortTaken(logged)
            raise ServerError(f"{what} exited with {popen.returncode}:\n{logged}")
        if is_ready():
            return process
        time.sleep(0.05)
    process.stop()
    raise ServerError(f"{what} was not ready after {START_TIMEOUT:.0f}s:\n{tail(log)}")


def start_on_free_port(start_on: Callable[[int], Process]) -> tuple[Process, int]:
    """Ports are chosen, then bound by another process; a race with another run is retried."""
    for _ in range(PORT_ATTEMPTS - 1):
        port = free_port()
        with contextlib.suppress(PortTaken):
            return start_on(port), port
    port = free_port()
    return start_on(port), port


def mariadb_greets(port: int) -> bool:
    """True once the server answers a connection with its protocol-10 handshake."""
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            packet = sock.recv(5)
    except OSError:
        return False
    return len(packet) == 5 and packet[4] == 10


def postgresql_ready(data_dir: Path) -> bool:
    """True once postmaster.pid says the server accepts connections."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except OSError:
        return False
    return len(lines) >= 8 and lines[7].strip() == "ready"


@contextlib.contextmanager
def temp_dir(prefix: str, run_as: RunAs) -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        run_as.own(base)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def mariadb() -> Iterator[DatabaseServer]:
    """MariaDB from Debian's mariadb-server, with a password login for the tests."""
    install_db = require(which("mariadb-install-db"), "mariadb-install-db", "mariadb-server")
    mariadbd = require(which("mariadbd"), "mariadbd", "mariadb-server")
    run_as = RunAs.for_server(None, "mariadb-server")
    as_root = ["--user=root"] if is_root() else []
    with temp_dir("ods-test-mariadb-", run_as) as base:
        data_dir, log, init_file = base / "data", base / "server.log", base / "init.sql"
        init_file.write_text(
            f"CREATE USER IF NOT EXISTS '{USER}'@'{HOST}' IDENTIFIED BY '{PASSWORD}';\n"
            f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'{HOST}' WITH GRANT OPTION;\n"
        )
        install = [
            install_db,
            "--no-defaults",
            f"--datadir={data_dir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *as_root,
        ]
        run(install, base, log, "mariadb-install-db")

        def start_on(port: int) -> Process:
            server = [
                mariadbd,
                "--no-defaults",
                *as_root,
                f"--datadir={data_dir}",
                f"--socket={base / 'mysqld.sock'}",
                f"--pid-file={base / 'mysqld.pid'}",
                f"--init-file={init_file}",
                f"--bind-address={HOST}",
                f"--port={port}",
                "--skip-name-resolve",
                "--skip-log-bin",
                # utf8mb4 by default, as Debian's own configuration sets it.
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
                "--max-connections=500",
                "--innodb-buffer-pool-size=64M",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--innodb-fast-shutdown=2",
                "--performance-schema=OFF",
            ]
            return start(
                server, base, log, signal.SIGTERM, lambda: mariadb_greets(port), "mariadbd", run_as
            )

        process, port = start_on_free_port(start_on)
        try:
            yield DatabaseServer(backend="mariadb", port=port, maintenance_database="")
        finally:
            process.stop()


@contextlib.contextmanager
def postgresql() -> Iterator[DatabaseServer]:
    """PostgreSQL from Debian's postgresql; as root it runs as the `postgres` user."""
    bin_dir = postgresql_bin_dir()
    run_as = RunAs.for_server("postgres", "postgresql")
    with temp_dir("ods-test-postgresql-", run_as) as base:
        data_dir, log, password_file = base / "data", base / "server.log", base / "password"
        password_file.write_text(PASSWORD + "\n")
        log.touch()
        for path in (password_file, log):
            run_as.own(path)
        initdb = [
            str(bin_dir / "initdb"),
            f"--pgdata={data_dir}",
            f"--username={USER}",
            f"--pwfile={password_file}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
            "--no-instructions",
        ]
        run(initdb, base, log, "initdb", run_as)

        def start_on(port: int) -> Process:
            server = [str(bin_dir / "postgres"), "-D", str(data_dir), "-k", str(base)]
            server += ["-h", HOST, "-p", str(port)]
            for setting in (
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
                "max_connections=200",
                "shared_buffers=32MB",
            ):
                server += ["-c", setting]
            return start(
                server,
                base,
                log,
                signal.SIGINT,
                lambda: postgresql_ready(data_dir),
                "postgres",
                run_as,
            )

        process, port = start_on_free_port(start_on)
        try:
            yield DatabaseServer(backend="postgresql", port=port, maintenance_database="postgres")
        finally:
            process.stop()


SERVERS: dict[str, Callable[[], contextlib.AbstractContextManager[DatabaseServer]]] = {
    "mariadb": mariadb,
    "postgresql": postgresql,
}


BACKENDS = ("sqlite", "mariadb", "postgresql")


def selected_backends() -> list[str]:
    """The backends named in ODS_TEST_BACKENDS (a comma list), or all of them."""
    raw = os.environ.get("ODS_TEST_BACKENDS", "")
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    unknown = sorted(set(names) - set(BACKENDS))
    if unknown:
        raise pytest.UsageError(
            f"ODS_TEST_BACKENDS: unknown backend {unknown[0]!r}; use {', '.join(BACKENDS)}"
        )
    return names or list(BACKENDS)


def serving(backend: str) -> Iterator[DatabaseServer]:
    """The backend's server for as long as the generator runs; a test failure if it
    cannot start."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(SERVERS[backend]())
        except ServerError as exc:
            pytest.fail(f"cannot start the {backend} test server: {exc}", pytrace=False)
        yield server
