"""Two real servers joined through the console; a package uploaded in one console
becomes Public in the other's, live, without a reload. How peer links and their
urls are shown."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.helpers.console import log_in, open_tab, package_row
from tests.helpers.packages import MIB
from tests.helpers.processes.mesh import PASSWORD, Node, mesh_of, random_file
from tests.helpers.processes.proxy import StallingProxy
from tests.helpers.processes.serve import serving

pytestmark = pytest.mark.e2e

PLAIN_HTTP = "http — not encrypted"


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


@contextmanager
def stalling_link(port: int, stall_after: int) -> Iterator[StallingProxy]:
    """A StallingProxy on its own event loop in a thread (Playwright's loop runs here)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    proxy = StallingProxy(port, stall_after=stall_after)
    try:
        asyncio.run_coroutine_threadsafe(proxy.__aenter__(), loop).result(10)
        try:
            yield proxy
        finally:
            asyncio.run_coroutine_threadsafe(proxy.__aexit__(), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def admin_client(node: Node) -> httpx.Client:
    assert node.token, "log in first (prepare)"
    return httpx.Client(
        base_url=node.url, headers={"Authorization": f"Bearer {node.token}"}, timeout=60
    )


def test_a_download_shows_its_progress_live_then_the_peer_is_unregistered(
    tmp_path: Path, page: Page
) -> None:
    with mesh_of(tmp_path, 2, ODS_FETCH_STALL_SECONDS="3") as (source, receiver):
        source_about = prepare(source)
        prepare(receiver)
        # The receiver reaches the source through a link that goes quiet after
        # 3 MiB of answers, so the download stays in progress until released.
        with stalling_link(source.port, stall_after=3 * MIB) as link:
            with admin_client(receiver) as client:
                registered = client.post(
                    "/api/admin/register",
                    json={
                        "url": link.url,
                        "iss_id": source_about["iss"],
                        "key": source_about["key"],
                    },
                )
                assert registered.status_code == 201, registered.text

            log_in(page, receiver.url, PASSWORD)
            open_tab(page, "Packages")
            expect(page.get_by_text("No packages yet")).to_be_visible()
            page.evaluate("window.notReloaded = true")

            path = tmp_path / "Slow Link.pkg"
            sha256 = random_file(path, 8 * MIB)
            with admin_client(source) as client, path.open("rb") as handle:
                uploaded = client.post("/api/admin/upload", files={"file": (path.name, handle)})
                assert uploaded.status_code == 201, uploaded.text

            row = package_row(page, path.name)
            status = row.locator(".download-progress")
            expect(row).to_contain_text("Downloading")
            expect(status).to_contain_text("/8 chunks")
            expect(status).to_contain_text(f"from {source.name}")
            expect(row.get_by_role("progressbar", name=f"Download of {path.name}")).to_be_visible()
            link.stalling = False

            expect(row.get_by_role("cell", name="Public")).to_be_visible(timeout=60_000)
            expect(row.locator(f'code[title="{sha256}"]')).to_be_visible()
            assert page.evaluate("window.notReloaded") is True

            # Unregistering tells the other side too (through the link, now flowing).
            open_tab(page, "Network")
            page.get_by_role("button", name=f"Unregister {source.name}").click()
            confirm = page.get_by_role("dialog", name=f"Unregister {source.name}?")
            confirm.get_by_role("button", name="Unregister").click()
            expect(page.get_by_role("region", name="Registered servers")).to_contain_text(
                "No registered servers yet"
            )
            with admin_client(source) as client:
                assert client.get("/api/admin/registered_ods").json()["items"] == []


def wait_status(client: httpx.Client, filename: str, status: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        answer = client.get(f"/api/admin/packages/{filename}")
        if answer.status_code == 200 and answer.json()["status"] == status:
            return
        assert time.monotonic() < deadline, f"{filename} never {status}: {answer.text}"
        time.sleep(0.1)


def test_a_failed_package_is_retried_from_its_row(tmp_path: Path, page: Page) -> None:
    with mesh_of(tmp_path, 2, ODS_FETCH_STALL_SECONDS="2") as (source, receiver):
        source_about = prepare(source)
        prepare(receiver)
        path = tmp_path / "Flaky.pkg"
        sha256 = random_file(path, 4 * MIB)
        with admin_client(source) as client, path.open("rb") as handle:
            uploaded = client.post("/api/admin/upload", files={"file": (path.name, handle)})
            assert uploaded.status_code == 201, uploaded.text
        # The fetch stalls on its link, then its only source is unregistered: it gives up.
        with stalling_link(source.port, stall_after=MIB) as link, admin_client(receiver) as client:
            registered = client.post(
                "/api/admin/register",
                json={"url": link.url, "iss_id": source_about["iss"], "key": source_about["key"]},
            )
            assert registered.status_code == 201, registered.text
            wait_status(client, path.name, "Downloading")
            (peer,) = client.get("/api/admin/registered_ods").json()["items"]
            assert client.delete(f"/api/admin/registered_ods/{peer['id']}").status_code == 204
            wait_status(client, path.name, "Failed")
            again = client.post(
                "/api/admin/register",
                json={"url": source.url, "iss_id": source_about["iss"], "key": source_about["key"]},
            )
            assert again.status_code == 201, again.text

        log_in(page, receiver.url, PASSWORD)
        open_tab(page, "Packages")
        row = package_row(page, path.name)
        expect(row).to_contain_text("no registered peer is left to fetch it from")
        row.get_by_role("button", name=f"Retry {path.name}").click()
        confirm = page.get_by_role("dialog", name=f"Retry {path.name}?")
        confirm.get_by_role("button", name="Retry").click()
        expect(row.get_by_role("cell", name="Public")).to_be_visible(timeout=60_000)
        expect(row.locator(f'code[title="{sha256}"]')).to_be_visible()
        expect(row.get_by_role("button", name=f"Retry {path.name}")).to_have_count(0)


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
                "aria-label",
                f"{first.name} and 1 registered servers: {second.name} reachable ({PLAIN_HTTP})",
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


def test_a_plain_http_link_is_marked_with_what_that_means(tmp_path: Path, page: Page) -> None:
    with mesh_of(tmp_path, 2) as (first, second):
        prepare(first)
        second_about = prepare(second)
        with admin_client(first) as client:
            registered = client.post(
                "/api/admin/register",
                json={"url": second.url, "iss_id": second_about["iss"], "key": second_about["key"]},
            )
            assert registered.status_code == 201, registered.text
            assert registered.json()["transport"] == "http"

        log_in(page, first.url, PASSWORD)
        open_tab(page, "Network")
        row = (
            page.get_by_role("region", name="Registered servers")
            .get_by_role("row")
            .filter(has_text=second.name)
        )
        expect(row.get_by_role("link", name=second.url)).to_have_attribute("href", second.url)
        mark = row.locator(".transport-plain")
        expect(mark).to_have_text(
            re.compile(
                r"http — not encrypted\s+traffic can be read on the way; tampering is still caught"
            )
        )
        expect(mark).to_have_attribute("title", re.compile("signed digests.*can read this traffic"))
        picture = page.get_by_role("region", name="Mesh")
        expect(picture.locator(".node-transport")).to_have_text("http")
        expect(picture.locator("figcaption")).to_contain_text(
            "http — not encrypted: traffic can be read on the way; tampering is still caught"
        )
        expect(picture.get_by_role("img")).to_have_attribute(
            "aria-label", re.compile(f"{second.name} reachable \\({PLAIN_HTTP}\\)")
        )


def test_a_peer_url_that_is_not_http_is_shown_as_text(tmp_path: Path, page: Page) -> None:
    """A url stored before urls were checked (the API now refuses them) is never a link."""
    peers = [
        {
            "firewalled_mode": False,
            "id": 1,
            "iss": "a" * 32,
            "name": "Injected",
            "registered_on": "2017-11-10T04:45:47",
            "registered_on_ts": 1510289147,
            "stage": "Prod",
            "url": "javascript:alert(document.domain)//",
            "transport": "http",
            "reachable": True,
            "last_contact": None,
            "last_error": None,
            "pending_from": 0,
            "pending_to": 0,
        },
        {
            "firewalled_mode": False,
            "id": 2,
            "iss": "b" * 32,
            "name": "Encrypted",
            "registered_on": "2017-11-10T04:45:47",
            "registered_on_ts": 1510289147,
            "stage": "Prod",
            "url": "https://ods-b.example.com",
            "transport": "https",
            "reachable": True,
            "last_contact": None,
            "last_error": None,
            "pending_from": 0,
            "pending_to": 0,
        },
    ]

    def answer(route: Route) -> None:
        route.fulfill(
            status=200, content_type="application/json", body=json.dumps({"items": peers})
        )

    with serving(tmp_path / "data", admin_password=PASSWORD) as server:
        page.route("**/api/admin/registered_ods", answer)
        log_in(page, server.url, PASSWORD)
        open_tab(page, "Network")
        table = page.get_by_role("region", name="Registered servers")
        injected = table.get_by_role("row").filter(has_text="Injected")
        expect(injected).to_contain_text("javascript:alert(document.domain)//")
        expect(injected).to_contain_text("not an http(s) URL")
        expect(injected.get_by_role("link")).to_have_count(0)
        expect(injected.locator(".transport-plain")).to_have_count(0)
        encrypted = table.get_by_role("row").filter(has_text="Encrypted")
        expect(encrypted.get_by_role("link", name="https://ods-b.example.com")).to_be_visible()
        expect(encrypted.locator(".transport-plain")).to_have_count(0)
        expect(page.locator('a[href^="javascript:" i]')).to_have_count(0)
