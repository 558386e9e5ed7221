"""`ods backup create` of a running server and `ods backup restore` into a new one.

Real processes throughout: the backup is taken while `ods serve` runs, restored
with the command an admin types, and a new `ods serve` on the restored data dir
and database serves the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect

from ods.core.config import normalise_database_url
from ods.core.db import create_engine
from tests.helpers.packages import MIB
from tests.helpers.processes.mesh import PASSWORD, Node, random_file
from tests.helpers.processes.serve import ODS, free_port, server_env

pytestmark = pytest.mark.e2e

ALICE_PASSWORD = "alice's own long passphrase"


def ods(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an `ods` command with the settings `node` runs with."""
    env = server_env(node.data_dir, node.port, PASSWORD, **node.extra_env)
    return subprocess.run(
        [str(ODS), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def node_on(root: Path, name: str, database_url: str | None) -> Node:
    env = {"DATABASE_URL": database_url} if database_url else {}
    return Node(name, root / name, free_port(), env)


@pytest.fixture
async def second_database_url(
    database_backend: str, request: pytest.FixtureRequest
) -> AsyncIterator[str | None]:
    """Another empty database on the same backend; None for SQLite (the data dir's own)."""
    if database_backend == "sqlite":
        yield None
        return
    server = request.getfixturevalue(f"{database_backend}_server")
    async with server.fresh_database() as url:
        yield url


async def table_names(database_url: str) -> list[str]:
    engine = create_engine(normalise_database_url(database_url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()


async def add_user(node: Node, username: str, password: str) -> None:
    async with node.client() as client:
        response = await client.post(
            "/api/admin/users",
            json={
                "username": username,
                "password": password,
                "role": "package_manager",
                "must_change_password": False,
            },
        )
    assert response.status_code == 201, response.text


async def can_log_in(node: Node, username: str, password: str) -> bool:
    async with httpx.AsyncClient(base_url=node.url, timeout=60) as client:
        response = await client.post(
            "/api/auth/login", json={"username": username, "password": password}
        )
    return response.status_code == 200


async def test_a_backup_of_a_running_server_restores_into_a_server_serving_the_same_bytes(
    tmp_path: Path,
    database_backend: str,
    database_url: str,
    second_database_url: str | None,
) -> None:
    source = node_on(tmp_path, "ods-0", None if database_backend == "sqlite" else database_url)
    peer = node_on(tmp_path, "ods-1", None)
    restored = node_on(tmp_path, "restored", second_database_url)
    try:
        for node in (source, peer):
            node.start()
            await node.login()
            await node.configure("Prod")
        await source.register_with(peer)
        await add_user(source, "alice", ALICE_PASSWORD)
        sha256 = random_file(tmp_path / "Firefox.pkg", 3 * MIB + 1)
        await source.upload(tmp_path / "Firefox.pkg")
        await source.wait_served("Firefox.pkg", sha256)
        about = await source.about()

        backup = tmp_path / "ods.backup"
        made = ods(source, "backup", "create", str(backup))
        assert made.returncode == 0, made.stderr
        assert "keep it as safe as the server" in made.stderr
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600
        source.stop()

        done = ods(restored, "backup", "restore", str(backup))
        assert done.returncode == 0, done.stderr
        for name in ("database_key", "secret_key"):
            original = (source.data_dir / "secrets" / name).read_bytes()
            assert (restored.data_dir / "secrets" / name).read_bytes() == original
        restored.start()

        assert await restored.served_sha256("Firefox.pkg") == sha256
        assert await can_log_in(restored, "alice", ALICE_PASSWORD)
        # The source's own login token came back with the tokens table.
        restored.token = source.token
        back = await restored.about()
        assert (back["iss"], back["key"]) == (about["iss"], about["key"])
        assert (await restored.peer_record("ods-1"))["url"] == peer.url
        package = await restored.package("Firefox.pkg")
        assert package is not None
        assert package["status"] == "Public"
        # The file is the version's: the same Last-Modified as on the source (its
        # creation time), and its name under versions/ for Nginx.
        published = source.data_dir / "share" / "Firefox.pkg"
        back_in = restored.data_dir / "share" / "Firefox.pkg"
        assert back_in.stat().st_mtime == published.stat().st_mtime
        version = restored.data_dir / "versions" / str(package["sha1"]) / "Firefox.pkg"
        assert version.samefile(back_in)
    finally:
        for node in (source, peer, restored):
            node.stop()


async def test_a_restore_refuses_a_data_dir_or_database_that_is_not_empty(
    tmp_path: Path, database_backend: str, database_url: str
) -> None:
    source = node_on(tmp_path, "ods-0", None)
    source.start()
    try:
        backup = tmp_path / "ods.backup"
        made = ods(source, "backup", "create", str(backup))
        assert made.returncode == 0, made.stderr
        again = ods(source, "backup", "create", str(backup))
        assert again.returncode == 1
        assert "exists" in again.stderr
    finally:
        source.stop()
    # database_url has the schema already: not empty.
    target = node_on(tmp_path, "target", None if database_backend == "sqlite" else database_url)
    if database_backend == "sqlite":
        target.data_dir.mkdir()
        (target.data_dir / "ods.db").write_bytes(b"x")
    refused = ods(target, "backup", "restore", str(backup))
    assert refused.returncode == 1
    assert "add --force" in refused.stderr
    forced = ods(target, "backup", "restore", "--force", str(backup))
    assert forced.returncode == 0, forced.stderr
    target.start()
    target.stop()


def tamper(backup: Path, member: str, out: Path) -> None:
    """A copy of `backup` with one byte of `member` changed, the manifest left as it was."""
    with tarfile.open(backup) as original, tarfile.open(out, "w") as copy:
        for info in original.getmembers():
            data = original.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == member:
                data = bytes([data[0] ^ 1]) + data[1:]
            copy.addfile(info, io.BytesIO(data))


def with_header(backup: Path, header: dict[str, object], out: Path) -> None:
    with tarfile.open(backup) as original, tarfile.open(out, "w") as copy:
        for info in original.getmembers():
            data = original.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == "ods-backup.json":
                data = json.dumps(header).encode()
                info.size = len(data)
            copy.addfile(info, io.BytesIO(data))


def with_rows_doubled(backup: Path, table: str, out: Path) -> None:
    """A copy of `backup` whose first row of `table` is there twice, with a manifest to match:
    a file that passes every check and fails only while the rows are loaded."""
    with tarfile.open(backup) as original, tarfile.open(out, "w") as copy:
        members = {
            info.name: (info, original.extractfile(info).read())  # type: ignore[union-attr]
            for info in original.getmembers()
        }
        lines = members["database.jsonl"][1].decode().splitlines(keepends=True)
        at = next(i for i, line in enumerate(lines) if line.startswith(f'{{"table": "{table}"'))
        rows = "".join([*lines[: at + 2], lines[at + 1], *lines[at + 2 :]]).encode()
        members["database.jsonl"] = (members["database.jsonl"][0], rows)
        manifest = json.loads(members["manifest.json"][1])
        for member in manifest["members"]:
            if member["name"] == "database.jsonl":
                member.update(size=len(rows), sha256=hashlib.sha256(rows).hexdigest())
        members["manifest.json"] = (members["manifest.json"][0], json.dumps(manifest).encode())
        for info, data in members.values():
            info.size = len(data)
            copy.addfile(info, io.BytesIO(data))


def files_in(directory: Path) -> list[Path]:
    return [Path(root, name) for root, _, names in os.walk(directory) for name in names]


async def test_a_damaged_backup_is_refused_and_nothing_is_restored(
    tmp_path: Path, second_database_url: str | None
) -> None:
    source = node_on(tmp_path, "ods-0", None)
    source.start()
    try:
        await source.login()
        random_file(tmp_path / "Firefox.pkg", MIB + 7)
        await source.upload(tmp_path / "Firefox.pkg")
        backup = tmp_path / "ods.backup"
        made = ods(source, "backup", "create", str(backup))
        assert made.returncode == 0, made.stderr
    finally:
        source.stop()

    whole = backup.read_bytes()
    truncated = tmp_path / "truncated.backup"
    truncated.write_bytes(whole[: len(whole) // 2])
    without_manifest = tmp_path / "short.backup"
    # Cut right before the manifest: every member whole, the manifest missing.
    without_manifest.write_bytes(whole[: whole.rindex(b"manifest.json")])
    altered = tmp_path / "altered.backup"
    tamper(backup, "share/Firefox.pkg", altered)
    altered_rows = tmp_path / "altered-rows.backup"
    tamper(backup, "database.jsonl", altered_rows)
    future = tmp_path / "future.backup"
    with_header(backup, {"format": "ods-backup", "format_version": 99}, future)
    doubled = tmp_path / "doubled.backup"
    with_rows_doubled(backup, "users", doubled)
    stranger = tmp_path / "stranger.tar"
    with tarfile.open(stranger, "w") as tar:
        tar.add(tmp_path / "Firefox.pkg", arcname="Firefox.pkg")

    cases = {
        truncated: "truncated",
        without_manifest: "truncated",
        altered: "does not match its manifest",
        altered_rows: "does not match its manifest",
        future: "format version 99",
        stranger: "not an ODS backup",
        doubled: "Loading the database failed, nothing was restored",
    }
    target = node_on(tmp_path, "target", second_database_url)
    for path, reason in cases.items():
        refused = ods(target, "backup", "restore", str(path))
        assert refused.returncode == 1, (path.name, refused.stderr)
        assert reason in refused.stderr, (path.name, refused.stderr)
        assert files_in(target.data_dir) == [], path.name
        if second_database_url:
            assert await table_names(second_database_url) == [], path.name
