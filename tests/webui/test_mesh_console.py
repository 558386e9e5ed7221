"""Two real servers joined through the console; a package uploaded in one console
becomes Public in the other's, live, without a reload."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.mesh import PASSWORD, Node, mesh_of, random_file
from tests.webui.console import log_in, open_tab, package_row

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


def prepare(node: Node) -> dict[str, str]:
    """Log in, name the server and give its URL; return its About (iss and key).

    Plain httpx: inside Playwright's sync API an asyncio loop already runs.
    """
    login = httpx.post(
        f"{node.url}/api/auth/login", json={"username": "admin", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    node.token = login.json()["token"]
    headers = {"Authorization": f"Bearer {node.token}"}
    with httpx.Client(base_url=node.url, headers=headers) as client:
        named = client.post("/api/admin/about/update", json={"name": node.name, "url": node.url})
        assert named.status_code == 201, named.text
        found: dict[str, str] = client.get("/api/admin/about").json()
        return found


def test_register_through_the_console_and_watch_a_package_arrive(
    tmp_path: Path, browser: Browser
) -> None:
    with mesh_of(tmp_path, 2) as (first, second):
        prepare(first)
        second_about = prepare(second)

        one = browser.new_context(viewport={"width": 1280, "height": 800})
        two = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = one.new_page()
            log_in(page, first.url, PASSWORD)
            open_tab(page, "Network")
            page.get_by_label("URL").fill(second.url)
            page.get_by_label("ISS ID").fill(second_about["iss"])
            page.get_by_label("Key").fill(second_about["key"])
            page.get_by_role("button", name="Register", exact=True).click()
            expect(page.get_by_role("status").filter(has_text="Registered with")).to_contain_text(
                second.name
            )
            peers = page.get_by_role("region", name="Registered servers")
            expect(peers.get_by_role("row").filter(has_text=second.name)).to_be_visible()
            mesh = page.get_by_role("region", name="Mesh").get_by_role("img")
            expect(mesh).to_have_attribute(
                "aria-label", f"{first.name} and 1 registered servers: {second.name} reachable"
            )

            watcher = two.new_page()
            log_in(watcher, second.url, PASSWORD)
            open_tab(watcher, "Network")
            their_peers = watcher.get_by_role("region", name="Registered servers")
            expect(their_peers.get_by_role("row").filter(has_text=first.name)).to_be_visible()
            open_tab(watcher, "Packages")
            expect(watcher.get_by_text("No packages yet")).to_be_visible()
            watcher.evaluate("window.notReloaded = true")

            path = tmp_path / "Mesh.pkg"
            sha256 = random_file(path, 6 * MIB + 99)
            sha1 = hashlib.sha1(path.read_bytes()).hexdigest()  # noqa: S324 - compatible digest
            open_tab(page, "Packages")
            page.get_by_label("Package file").set_input_files(path)
            page.get_by_role("button", name="Upload", exact=True).click()
            expect(page.get_by_role("status").filter(has_text="Uploaded")).to_contain_text(sha1)

            row = package_row(watcher, path.name)
            expect(row.get_by_role("cell", name="Public")).to_be_visible(timeout=60_000)
            expect(row.locator(f'code[title="{sha1}"]')).to_be_visible()
            expect(row.locator(f'code[title="{sha256}"]')).to_be_visible()
            assert watcher.evaluate("window.notReloaded") is True
        finally:
            one.close()
            two.close()
