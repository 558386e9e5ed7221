"""contrib/autopkg/ODSUploader.py, run as the Example.ods.recipe step, against a real
`ods serve` behind the shipped Nginx config with a certificate from a CA made here.

AutoPkg runs only on macOS; `tests/helpers/autopkg` stands in for its `autopkglib`.
One server for the module; every test names its packages with its own random tag.
"""

from __future__ import annotations

import hashlib
import os
import re
import ssl
import time
import tracemalloc
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.autopkg import ProcessorError, run_example_recipe
from tests.helpers.processes.nginx import Nginx, nginx_in_front_of
from tests.helpers.processes.serve import OdsServer, serving
from tests.helpers.tls import ca_and_server_certificate

pytestmark = pytest.mark.e2e

PASSWORD = "an autopkg test passphrase"
MIB = 1024 * 1024


@dataclass
class Site:
    server: OdsServer
    nginx: Nginx
    ca_file: Path
    packager_token: str
    read_only_token: str

    def admin(self) -> httpx.Client:
        login = httpx.post(
            f"{self.server.url}/api/auth/login", json={"username": "admin", "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        return httpx.Client(
            base_url=self.server.url,
            headers={"Authorization": f"Bearer {login.json()['token']}"},
            timeout=30,
        )

    def env(self, pkg_path: Path, **overrides: Any) -> dict[str, Any]:
        """AutoPkg's preferences for ODS and the pkg recipe's pkg_path."""
        return {
            "ODS_URL": self.nginx.url,
            "ODS_API_TOKEN": self.packager_token,
            "ODS_CA_FILE": str(self.ca_file),
            "pkg_path": str(pkg_path),
            **overrides,
        }

    def uploads_seen_by_nginx(self) -> int:
        """Uploads Nginx has logged, once it has logged every request before this call.

        Nginx writes a line once a request is done, which may be just after its client
        has the answer: a request of our own, logged after the others, marks the end."""
        marker = f"/healthz?marker={uuid.uuid4().hex}"
        answer = httpx.get(
            self.nginx.url + marker, verify=ssl.create_default_context(cafile=self.ca_file)
        )
        assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 10
        while marker not in (log := self.nginx.access_log()):
            assert time.monotonic() < deadline, "Nginx did not log the marker request"
            time.sleep(0.02)
        return log.count("POST /api/admin/upload ")


def api_token(admin: httpx.Client, username: str, role: str) -> str:
    """A user with this role, and an API token of theirs, as an admin would set them up."""
    created = admin.post(
        "/api/admin/users",
        json={
            "username": username,
            "password": PASSWORD,
            "role": role,
            "must_change_password": False,
        },
    )
    assert created.status_code == 201, created.text
    with httpx.Client(base_url=admin.base_url, timeout=30) as client:
        login = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
        assert login.status_code == 200, login.text
        token = client.post(
            "/api/admin/tokens",
            json={"name": f"AutoPkg as {username}"},
            headers={"Authorization": f"Bearer {login.json()['token']}"},
        )
    assert token.status_code == 201, token.text
    secret: str = token.json()["token"]
    return secret


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("autopkg")
    ca_file, cert, key = ca_and_server_certificate(root)
    with (
        serving(root / "data", admin_password=PASSWORD) as server,
        nginx_in_front_of(server.port, server.data_dir, cert, key, root / "nginx") as nginx,
    ):
        placeholder = Site(server, nginx, ca_file, "", "")
        with placeholder.admin() as admin:
            packager = api_token(admin, "autopkg", "package_manager")
            read_only = api_token(admin, "auditor", "read_only")
        yield Site(server, nginx, ca_file, packager, read_only)


def package_file(directory: Path, content: bytes, name: str = "Tool-1.0.pkg") -> Path:
    """A package named with a tag no other test uses (and a space, to be quoted in URLs)."""
    path = directory / f"t{uuid.uuid4().hex[:10]} {name}"
    path.write_bytes(content)
    return path


def on_ods(site: Site, filename: str) -> dict[str, Any] | None:
    with site.admin() as admin:
        answer = admin.get(f"/api/admin/packages/{urllib.parse.quote(filename)}")
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    package: dict[str, Any] = answer.json()
    return package


def downloaded(site: Site, url: str) -> bytes:
    answer = httpx.get(url, verify=ssl.create_default_context(cafile=site.ca_file), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.content


def test_the_first_run_uploads_and_outputs_the_url_and_digests(site: Site, tmp_path: Path) -> None:
    content = os.urandom(2 * MIB + 12345)
    pkg = package_file(tmp_path, content)

    env, outputs, printed = run_example_recipe(site.env(pkg))

    url = f"{site.nginx.url}/share/{urllib.parse.quote(pkg.name)}"
    assert outputs["ods_package_url"] == url
    assert outputs["ods_package_sha256"] == hashlib.sha256(content).hexdigest()
    sha1 = hashlib.sha1(content).hexdigest()  # noqa: S324 - the API's compatible digest
    assert outputs["ods_package_sha1"] == sha1
    assert outputs["ods_package_stage"] == "Dev"  # the recipe's Input
    assert outputs["ods_uploaded"] is True
    assert env["ods_replaced"] is False
    assert downloaded(site, url) == content
    package = on_ods(site, pkg.name)
    assert package is not None
    assert (package["stage"], package["status"], package["sha256"]) == (
        "Dev",
        "Public",
        outputs["ods_package_sha256"],
    )
    assert (outputs["ods_package_id"], outputs["ods_package_uuid"]) == (
        package["id"],
        package["uuid"],
    )
    summary = outputs["odsuploader_summary_result"]
    assert summary["data"]["filename"] == pkg.name
    assert summary["data"]["url"] == url
    assert set(summary["report_fields"]) == set(summary["data"])
    assert any(f"Uploading {pkg.name}" in line for line in printed)


def test_a_second_run_with_the_same_file_sends_nothing(site: Site, tmp_path: Path) -> None:
    pkg = package_file(tmp_path, os.urandom(300_000))
    first, _, _ = run_example_recipe(site.env(pkg))
    uploads = site.uploads_seen_by_nginx()

    # A stale summary from an earlier step in the same AutoPkg run is not reported again.
    env, outputs, printed = run_example_recipe(
        site.env(pkg, odsuploader_summary_result=first["odsuploader_summary_result"])
    )

    assert site.uploads_seen_by_nginx() == uploads
    assert env["ods_uploaded"] is False
    assert "odsuploader_summary_result" not in env
    for name in ("ods_package_url", "ods_package_sha256", "ods_package_uuid", "ods_package_id"):
        assert outputs[name] == first[name]
    assert any("same SHA-256" in line and "not uploading" in line for line in printed)


def test_a_changed_file_replaces_the_package(site: Site, tmp_path: Path) -> None:
    pkg = package_file(tmp_path, os.urandom(200_000))
    first, _, _ = run_example_recipe(site.env(pkg))
    rebuilt = os.urandom(250_000)
    pkg.write_bytes(rebuilt)

    env, outputs, _ = run_example_recipe(site.env(pkg, ODS_STAGE="Test"))

    assert (env["ods_uploaded"], env["ods_replaced"]) == (True, True)
    assert outputs["ods_package_sha256"] == hashlib.sha256(rebuilt).hexdigest()
    assert outputs["ods_package_id"] == first["ods_package_id"]
    assert outputs["ods_package_uuid"] != first["ods_package_uuid"]
    assert outputs["ods_package_stage"] == "Test"
    assert outputs["odsuploader_summary_result"]["data"]["replaced"] == "True"
    assert downloaded(site, outputs["ods_package_url"]) == rebuilt


def test_with_replace_off_a_changed_file_is_refused_before_sending(
    site: Site, tmp_path: Path
) -> None:
    original = os.urandom(100_000)
    pkg = package_file(tmp_path, original)
    first, _, _ = run_example_recipe(site.env(pkg))
    pkg.write_bytes(os.urandom(100_000))
    uploads = site.uploads_seen_by_nginx()

    with pytest.raises(ProcessorError, match="Set ODS_REPLACE to true"):
        run_example_recipe(site.env(pkg, ODS_REPLACE="False"))

    assert site.uploads_seen_by_nginx() == uploads
    package = on_ods(site, pkg.name)
    assert package is not None
    assert package["uuid"] == first["ods_package_uuid"]


def test_a_bad_token_fails_with_the_message_ods_gave(site: Site, tmp_path: Path) -> None:
    pkg = package_file(tmp_path, os.urandom(1000))
    ods_answer = httpx.get(
        f"{site.server.url}/api/admin/packages", headers={"Authorization": "Bearer ods_nope"}
    )
    assert ods_answer.status_code == 401

    with pytest.raises(ProcessorError) as refused:
        run_example_recipe(site.env(pkg, ODS_API_TOKEN="ods_nope"))

    message = str(refused.value)
    assert "HTTP 401 unauthorized" in message
    assert ods_answer.json()["message"] in message
    assert "ods_nope" not in message
    assert on_ods(site, pkg.name) is None


def test_a_refused_upload_shows_odss_message_though_ods_answers_before_the_body(
    site: Site, tmp_path: Path
) -> None:
    """Straight to uvicorn (no Nginx to read the body first): ODS refuses a read-only
    token's upload without reading the 8 MiB, and its answer still reaches the admin."""
    pkg = package_file(tmp_path, os.urandom(8 * MIB))
    ods_answer = httpx.post(
        f"{site.server.url}/api/admin/upload",
        headers={"Authorization": f"Bearer {site.read_only_token}"},
        files={"file": ("x.pkg", b"x")},
    )
    assert ods_answer.status_code == 403

    with pytest.raises(ProcessorError) as refused:
        run_example_recipe(
            site.env(pkg, ODS_URL=site.server.url, ODS_API_TOKEN=site.read_only_token)
        )

    message = str(refused.value)
    assert "HTTP 403 forbidden" in message
    assert ods_answer.json()["message"] in message
    assert on_ods(site, pkg.name) is None


def test_an_unknown_stage_is_refused(site: Site, tmp_path: Path) -> None:
    pkg = package_file(tmp_path, os.urandom(1000))

    with pytest.raises(ProcessorError, match="ODS_STAGE must be Dev, Test or Prod, not 'Staging'"):
        run_example_recipe(site.env(pkg, ODS_STAGE="Staging"))

    assert on_ods(site, pkg.name) is None


def test_tls_is_verified_against_the_servers_ca(site: Site, tmp_path: Path) -> None:
    pkg = package_file(tmp_path, os.urandom(1000))
    other_ca, _, _ = ca_and_server_certificate(tmp_path)

    for ca_file in ("", str(other_ca)):
        with pytest.raises(ProcessorError) as refused:
            run_example_recipe(site.env(pkg, ODS_CA_FILE=ca_file))
        message = str(refused.value)
        assert "certificate" in message
        assert "set ODS_CA_FILE" in message
    assert on_ods(site, pkg.name) is None

    _, outputs, _ = run_example_recipe(site.env(pkg))
    assert outputs["ods_uploaded"] is True


def test_the_upload_streams_from_disk(site: Site, tmp_path: Path) -> None:
    """Hashing and sending a 32 MiB package holds a few MiB at most, not the file."""
    content = os.urandom(32 * MIB)
    pkg = package_file(tmp_path, content, "Big-1.0.dmg")
    del content

    tracemalloc.start()
    try:
        _, outputs, _ = run_example_recipe(site.env(pkg))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert outputs["ods_uploaded"] is True
    assert peak < 6 * MIB, f"peak {peak / MIB:.1f} MiB"


def test_a_redirect_is_refused_not_followed(site: Site, tmp_path: Path) -> None:
    """The shipped Nginx config sends http:// to https:// with a 301; an upload cannot
    follow that, and the token must not follow it anywhere, so it is an error."""
    config = (site.nginx.workdir / "ods.conf").read_text(encoding="utf-8")
    plain = re.search(r"listen 127\.0\.0\.1:(\d+);", config)
    assert plain is not None, config
    pkg = package_file(tmp_path, os.urandom(1000))

    with pytest.raises(ProcessorError) as refused:
        run_example_recipe(site.env(pkg, ODS_URL=f"http://127.0.0.1:{plain.group(1)}"))

    message = str(refused.value)
    assert "HTTP 301, a redirect to 'https://127.0.0.1/api/admin/packages?" in message
    assert "Set ODS_URL to the address it redirects to" in message
    assert on_ods(site, pkg.name) is None
