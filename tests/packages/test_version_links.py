"""versions/<sha1>/<filename>: a second name of each published file that never changes.

Nginx sends downloads from it on a cached check (deploy/nginx/ods.conf), so the
name must only ever hold the bytes of that version: made from the staged file
before it is published, removed when the version is replaced or deleted, and
put right at start after a stop that cut a delete short.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from ods.core.config import Settings
from ods.core.storage import PackageFiles
from tests.helpers.api import NEW_PASSWORD, bearer, login, started
from tests.helpers.packages import upload

A = b"version A " * 1000
B = b"version B " * 1000


def sha1_of(content: bytes) -> str:
    return hashlib.sha1(content, usedforsecurity=False).hexdigest()


@pytest.fixture
def files(tmp_path: Path) -> PackageFiles:
    for name in ("share", "staging"):
        (tmp_path / name).mkdir()
    return PackageFiles(tmp_path / "share", tmp_path / "staging", "owner", tmp_path / "versions")


def staged(files: PackageFiles, content: bytes, name: str = "x") -> Path:
    path = files.staging_dir / f"upload-{name}~owner.part"
    path.write_bytes(content)
    return path


def names_under(versions: Path) -> list[str]:
    return sorted(str(path.relative_to(versions)) for path in versions.rglob("*"))


async def test_publishing_gives_the_file_its_version_name(files: PackageFiles) -> None:
    await files.publish(staged(files, A), "Tool.pkg", sha1_of(A), created_ts=1_700_000_000)
    version = files.version(sha1_of(A), "Tool.pkg")
    assert version.samefile(files.published("Tool.pkg"))
    assert version.stat().st_mtime == 1_700_000_000
    assert names_under(files.versions_dir) == [sha1_of(A), f"{sha1_of(A)}/Tool.pkg"]


async def test_a_new_version_takes_the_place_of_the_old_name(files: PackageFiles) -> None:
    await files.publish(staged(files, A), "Tool.pkg", sha1_of(A))
    old = files.version(sha1_of(A), "Tool.pkg")
    held = old.open("rb")  # as Nginx may be sending it
    try:
        await files.publish(staged(files, B), "Tool.pkg", sha1_of(B))
        assert held.read() == A  # what was being sent is still the old version, whole
    finally:
        held.close()
    assert not old.exists()
    assert names_under(files.versions_dir) == [sha1_of(B), f"{sha1_of(B)}/Tool.pkg"]
    assert files.version(sha1_of(B), "Tool.pkg").read_bytes() == B


async def test_a_delete_removes_only_its_own_name(files: PackageFiles) -> None:
    await files.publish(staged(files, A, "1"), "One.pkg", sha1_of(A))
    await files.publish(staged(files, A, "2"), "Same bytes.pkg", sha1_of(A))
    trash = await files.withdraw("One.pkg", "uuid-1", sha1_of(A))
    assert trash is not None
    trash.unlink()
    assert names_under(files.versions_dir) == [sha1_of(A), f"{sha1_of(A)}/Same bytes.pkg"]
    trash = await files.withdraw("Same bytes.pkg", "uuid-2", sha1_of(A))
    assert trash is not None
    assert names_under(files.versions_dir) == []


async def test_tidying_keeps_only_the_versions_that_have_rows(files: PackageFiles) -> None:
    await files.publish(staged(files, A, "1"), "Kept.pkg", sha1_of(A))
    await files.publish(staged(files, B, "2"), "Gone.pkg", sha1_of(B))
    half_made = files.versions_dir / sha1_of(A) / ".0123.link"
    os.link(files.published("Kept.pkg"), half_made)
    removed = files.tidy_versions({"Kept.pkg": {sha1_of(A)}})
    assert removed == 2
    assert names_under(files.versions_dir) == [sha1_of(A), f"{sha1_of(A)}/Kept.pkg"]


def test_a_file_published_before_versions_gets_its_name_only_if_unchanged(
    files: PackageFiles,
) -> None:
    created = 1_700_000_000
    for name in ("Same.pkg", "Touched.pkg"):
        path = files.published(name)
        path.write_bytes(A)
        os.utime(path, (created, created))
    os.utime(files.published("Touched.pkg"), (created + 60, created + 60))
    assert files.link_published("Same.pkg", sha1_of(A), created)
    assert files.version(sha1_of(A), "Same.pkg").samefile(files.published("Same.pkg"))
    # Its modification time is not the version's creation time: maybe another version.
    assert not files.link_published("Touched.pkg", sha1_of(A), created)
    assert not files.version(sha1_of(A), "Touched.pkg").exists()
    assert not files.link_published("Same.pkg", sha1_of(A), created)  # already there
    assert not files.link_published("Missing.pkg", sha1_of(A), created)


async def test_without_hard_links_publishing_still_works(
    files: PackageFiles, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)
    await files.publish(staged(files, A), "Tool.pkg", sha1_of(A))
    assert files.published("Tool.pkg").read_bytes() == A
    assert not files.version(sha1_of(A), "Tool.pkg").exists()
    assert "cannot link Tool.pkg" in caplog.text


async def test_a_start_puts_versions_right(settings: Settings) -> None:
    """A delete cut short leaves a name of a version gone; a file from before versions/
    has none. The next start removes the one and makes the other."""
    settings = settings.model_copy(update={"admin_password": NEW_PASSWORD})
    async with started(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ods.test") as client:
            client.headers.update(bearer(await login(client, "admin", NEW_PASSWORD)))
            for name, content in (("Kept.pkg", A), ("Deleted.pkg", B)):
                answer = await upload(client, name, content)
                assert answer.status_code == 201, answer.text
            files = app.state.context.files
            deleted_version = files.version(sha1_of(B), "Deleted.pkg")
            held = deleted_version.with_name("held")
            os.link(deleted_version, held)
            answer = await client.delete("/api/admin/packages/Deleted.pkg")
            assert answer.status_code in (200, 204), answer.text
    os.replace(held, deleted_version)  # as if the stop came before its removal
    kept_version = files.version(sha1_of(A), "Kept.pkg")
    kept_version.unlink()  # as if published before versions/ existed
    async with started(settings):
        pass
    assert not deleted_version.exists()
    assert not deleted_version.parent.exists()
    assert kept_version.samefile(files.published("Kept.pkg"))
