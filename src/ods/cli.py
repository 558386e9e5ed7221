"""The `ods` command: serve, worker, db upgrade, user create|passwd, backup create|restore.

A setting that is wrong, or a database or Redis that does not answer, ends the
command with one line naming the variable and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import logging
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from pydantic import ValidationError

import ods
from ods.core import platform
from ods.core.config import ConfigError, Settings, load_settings
from ods.core.errors import InvalidInput, OdsError, ServerMisconfigured

if TYPE_CHECKING:
    import uvicorn

    from ods.core.db import Database

CONNECT_TIMEOUT_SECONDS = 10


def _one_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__


def _database_variable(settings: Settings) -> str:
    return (
        "MYSQL_SERVER"
        if settings.mysql_server and settings.mysql_server in (settings.database_url or "")
        else "DATABASE_URL"
    )


async def _connect(settings: Settings) -> Database:
    """The database, answering; otherwise ConfigError naming the variable."""
    from sqlalchemy.engine import make_url

    from ods.core.db import Database

    assert settings.database_url is not None
    db = Database(settings.database_url)
    try:
        await asyncio.wait_for(db.ping(), CONNECT_TIMEOUT_SECONDS)
    except Exception as exc:
        await db.dispose()
        shown = make_url(settings.database_url).render_as_string(hide_password=True)
        reason = "no answer" if isinstance(exc, TimeoutError) else _one_line(exc)
        raise ConfigError(
            f"{_database_variable(settings)}: cannot connect to {shown}: {reason}"
        ) from None
    return db


async def _prepare_schema(db: Database) -> None:
    """SQLite is migrated in place; other databases must have run `ods db upgrade`."""
    from ods.core import migrate

    if db.is_sqlite:
        await migrate.upgrade(db.engine)
    elif not await migrate.is_current(db.engine):
        raise ServerMisconfigured("The database schema is not current: run `ods db upgrade` first.")


async def _with_database(settings: Settings, work: Callable[[Database], Awaitable[None]]) -> None:
    db = await _connect(settings)
    try:
        await work(db)
    finally:
        await db.dispose()


async def _check_redis(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        await client.ping()
    except Exception as exc:
        raise ConfigError(f"REDIS_URL: cannot connect: {_one_line(exc)}") from None
    finally:
        await client.aclose()


async def _preflight(settings: Settings) -> None:
    """What would otherwise fail inside the server's start-up, checked with a clear message."""
    from ods.core import migrate
    from ods.core.crypto import FieldCipher
    from ods.server import identity

    async def check(db: Database) -> None:
        if await migrate.is_current(db.engine):
            try:
                await identity.check_key(db, FieldCipher(settings.database_key_bytes))
            except ServerMisconfigured:
                raise ConfigError(
                    "DATABASE_KEY: it does not decrypt this database; "
                    "use the key the database was created with"
                ) from None
        elif not db.is_sqlite:
            raise ConfigError(
                f"{_database_variable(settings)}: the database schema is not current; "
                "run `ods db upgrade` first"
            )

    await _with_database(settings, check)
    if settings.redis_url:
        await _check_redis(settings.redis_url)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ods.app import create_app
    from ods.web.zero_copy import ZeroCopySend

    settings = load_settings()
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    asyncio.run(_preflight(settings))
    _configure_logging(settings)
    shown_host = f"[{host}]" if ":" in host else host
    print(f"ODS {ods.__version__} listening on http://{shown_host}:{port}", flush=True)
    print(f"Data dir: {settings.data_dir}", flush=True)
    _say_if_portable()
    app = create_app(settings)
    _freeze_startup_objects()
    config = uvicorn.Config(
        ZeroCopySend(app),
        host=host,
        port=port,
        log_level="debug" if settings.debug else "info",
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    stopping: threading.Event = app.state.stopping

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            # Which signals ask for a shutdown differs by platform (Windows
            # has no SIGTERM to send, but Ctrl+Break); the seam knows.
            with platform.shutdown_handlers(self.handle_exit):
                yield

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Open event streams end at their next poll instead of holding the
            # graceful shutdown until its timeout.
            stopping.set()
            super().handle_exit(sig, frame)

    server = Server(config)
    server.run(sockets=[_listen(config)])
    return 0 if server.started else 1


# Unsent bytes each connection's kernel send buffer may hold. Bytes in flight
# are not limited, so long fast links keep their speed; but the buffer no
# longer fills with megabytes that a receiver which dies mid-download never
# gets and must ask for again.
SEND_LOWAT = 128 * 1024


def _listen(config: uvicorn.Config) -> socket.socket:
    """The listening socket; accepted connections inherit its options."""
    sock = config.bind_socket()
    platform.set_send_lowat(sock, SEND_LOWAT)
    # Headers and body go out as two writes: without TCP_NODELAY the second waits for
    # the client's delayed ACK (~40 ms a response on keep-alive). uvloop sets it on each
    # connection; asyncio's loop does not on a socket made with protocol 0, as this is.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _freeze_startup_objects() -> None:
    """Keep what imports and start-up built (modules, classes, the app) out of every
    later garbage collection: they live as long as the process, and a full collection
    walking them all took ~50 ms, often during a large package list."""
    gc.collect()
    gc.freeze()


def _say_if_portable() -> None:
    # Slower on purpose; whoever reads the log should not have to guess why.
    if platform.FORCED:
        print(f"Portable I/O: forced by {platform.PORTABLE_SWITCH}", flush=True)


def _configure_logging(settings: Settings) -> None:
    # DEBUG is for ODS's own messages; SQL with its parameters never goes to the log.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.debug:
        logging.getLogger("ods").setLevel(logging.DEBUG)


def _worker(args: argparse.Namespace) -> int:
    from ods.lifecycle import build_worker

    settings = load_settings()
    if not settings.redis_url:
        raise ConfigError(
            "REDIS_URL: ods worker takes jobs from Redis; without REDIS_URL, "
            "ods serve runs them itself"
        )
    asyncio.run(_preflight(settings))
    _configure_logging(settings)
    print(f"ODS {ods.__version__} worker taking jobs from Redis", flush=True)
    print(f"Data dir: {settings.data_dir}", flush=True)
    _say_if_portable()
    _freeze_startup_objects()

    async def run() -> None:
        # Built inside the running loop: arq binds its signal handlers to it.
        worker = build_worker(settings, max_jobs=args.jobs)
        try:
            await worker.async_run()
        except asyncio.CancelledError:
            pass
        finally:
            await worker.close()

    asyncio.run(run())
    return 0


def _db_upgrade(_: argparse.Namespace) -> int:
    from ods.core import migrate

    async def upgrade(db: Database) -> None:
        await migrate.upgrade(db.engine)

    asyncio.run(_with_database(load_settings(), upgrade))
    print("Database schema is current.")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise OdsError("The passwords differ; nothing was changed.")
    return first


def _user_create(args: argparse.Namespace) -> int:
    from ods.accounts.passwords import check_new_password
    from ods.accounts.schemas import UserCreate
    from ods.accounts.service import create_user
    from ods.core.auth import Role

    settings = load_settings()
    password = _read_password(args)
    check_new_password(password, username=args.username)
    try:
        body = UserCreate(
            username=args.username,
            password=password,
            role=Role(args.role),
            must_change_password=False,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise InvalidInput(f"{field}: {error['msg']}") from None

    async def create(db: Database) -> None:
        await _prepare_schema(db)
        await create_user(db, body, actor="ods user create")

    asyncio.run(_with_database(settings, create))
    print(f"User {args.username} created with role {args.role}.")
    return 0


def _user_passwd(args: argparse.Namespace) -> int:
    from ods.accounts.service import set_password

    settings = load_settings()
    password = _read_password(args)

    async def change(db: Database) -> None:
        await _prepare_schema(db)
        await set_password(db, args.username, password)

    asyncio.run(_with_database(settings, change))
    print(f"Password of {args.username} changed; their sessions were ended.")
    return 0


def _backup_create(args: argparse.Namespace) -> int:
    from ods.backup.create import create_backup
    from ods.backup.progress import Progress
    from ods.core import migrate

    # Never creates keys: a backup of a data dir without them would be useless.
    settings = load_settings(create_dirs=False)
    file = Path(args.file).absolute()

    async def create(db: Database) -> None:
        if not await migrate.is_current(db.engine):
            raise ConfigError(
                f"{_database_variable(settings)}: the database schema is not current; "
                "run `ods db upgrade` first"
            )
        await create_backup(settings, db, file, Progress())

    asyncio.run(_with_database(settings, create))
    return 0


def _backup_restore(args: argparse.Namespace) -> int:
    from ods.backup.progress import Progress
    from ods.backup.restore import Target, restore_backup

    settings = load_settings(create_dirs=False)
    given = Settings()
    target = Target(settings, given.database_key, given.secret_key, force=args.force)
    file = Path(args.file).absolute()

    async def restore() -> None:
        if not settings.is_sqlite:
            # A clear message if the database does not answer (SQLite: the file is made later).
            await _with_database(settings, _nothing)
        await restore_backup(target, file, Progress())

    asyncio.run(restore())
    return 0


async def _nothing(_: Database) -> None:
    return None


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ods", description="Open Distribution Server")
    parser.add_argument("--version", action="version", version=f"ods {ods.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to listen on (default ODS_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port to listen on (default ODS_PORT or 8000)")
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run background jobs from Redis (REDIS_URL)")
    worker.add_argument("--jobs", type=int, default=8, help="jobs to run at once (default 8)")
    worker.set_defaults(run=_worker)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply schema migrations").set_defaults(run=_db_upgrade)

    user = commands.add_parser("user", help="manage local accounts")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = user_commands.add_parser("create", help="create an account")
    create.add_argument("username")
    create.add_argument(
        "--role", default="admin", choices=["admin", "package_manager", "read_only"]
    )
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    create.set_defaults(run=_user_create)
    passwd = user_commands.add_parser("passwd", help="set an account's password")
    passwd.add_argument("username")
    passwd.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    passwd.set_defaults(run=_user_passwd)

    backup = commands.add_parser("backup", help="back up or restore the whole server")
    backup_commands = backup.add_subparsers(dest="backup_command", required=True, metavar="ACTION")
    backup_create = backup_commands.add_parser(
        "create", help="write the database, the keys and the packages to FILE, online"
    )
    backup_create.add_argument("file", metavar="FILE", help="a new file (written mode 0600)")
    backup_create.set_defaults(run=_backup_create)
    backup_restore = backup_commands.add_parser(
        "restore", help="restore FILE into an empty data dir and database"
    )
    backup_restore.add_argument("file", metavar="FILE")
    backup_restore.add_argument(
        "--force",
        action="store_true",
        help="replace what the data dir and database hold (stop the server first)",
    )
    backup_restore.set_defaults(run=_backup_restore)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except ConfigError as exc:
        print(f"ods: configuration error: {exc}", file=sys.stderr)
        return 2
    except ServerMisconfigured as exc:
        print(f"ods: configuration error: {exc.message}", file=sys.stderr)
        return 2
    except OdsError as exc:
        print(f"ods: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
