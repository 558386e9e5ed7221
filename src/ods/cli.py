"""The `ods` command: serve, db upgrade, user create|passwd, --version."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable

import ods
from ods.config import ConfigError, Settings, load_settings
from ods.errors import OdsError


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ods.app import create_app

    settings = load_settings()
    host = args.host or settings.host
    port = args.port or settings.port
    logging.basicConfig(
        level=logging.DEBUG if settings.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    shown_host = f"[{host}]" if ":" in host else host
    print(f"ODS {ods.__version__} listening on http://{shown_host}:{port}", flush=True)
    print(f"Data dir: {settings.data_dir}", flush=True)
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level="debug" if settings.debug else "info",
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1


async def _with_database(settings: Settings, work: Callable[..., Awaitable[None]]) -> None:
    from ods.db import Database

    assert settings.database_url is not None
    db = Database(settings.database_url)
    try:
        await work(db)
    finally:
        await db.dispose()


def _db_upgrade(_: argparse.Namespace) -> int:
    from ods import migrate
    from ods.db import Database

    async def upgrade(db: Database) -> None:
        await migrate.upgrade(db.engine)

    asyncio.run(_with_database(load_settings(), upgrade))
    print("Database schema is current.")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise OdsError("The passwords differ; nothing was changed.")
    return first


def _user_create(args: argparse.Namespace) -> int:
    from ods.accounts.schemas import Role, UserCreate
    from ods.accounts.service import create_user
    from ods.db import Database

    settings = load_settings()
    password = _read_password(args)

    async def create(db: Database) -> None:
        from ods import migrate

        await migrate.upgrade(db.engine) if db.is_sqlite else None
        body = UserCreate(
            username=args.username,
            password=password,
            role=Role(args.role),
            must_change_password=False,
        )
        await create_user(db, body, actor="ods user create")

    asyncio.run(_with_database(settings, create))
    print(f"User {args.username} created with role {args.role}.")
    return 0


def _user_passwd(args: argparse.Namespace) -> int:
    from ods.accounts.service import set_password
    from ods.db import Database

    settings = load_settings()
    password = _read_password(args)

    async def change(db: Database) -> None:
        await set_password(db, args.username, password)

    asyncio.run(_with_database(settings, change))
    print(f"Password of {args.username} changed; their sessions were ended.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ods", description="Open Distribution Server")
    parser.add_argument("--version", action="version", version=f"ods {ods.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to listen on (default ODS_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default ODS_PORT or 8000)")
    serve.set_defaults(run=_serve)

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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except ConfigError as exc:
        print(f"ods: configuration error: {exc}", file=sys.stderr)
        return 2
    except OdsError as exc:
        print(f"ods: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
