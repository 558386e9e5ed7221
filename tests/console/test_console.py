"""The web console in Chromium against a real `ods serve`: what an admin does with it."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.helpers.console import log_in, open_tab, package_row
from tests.helpers.packages import MIB
from tests.helpers.processes.serve import OdsServer, free_port, serving

pytestmark = pytest.mark.e2e

PASSWORD = "a console test passphrase"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OdsServer]:
    """One server for the module; each test leaves it usable for the others."""
    with serving(tmp_path_factory.mktemp("console") / "data", admin_password=PASSWORD) as running:
        yield running


def api(server: OdsServer, password: str = PASSWORD, username: str = "admin") -> httpx.Client:
    login = httpx.post(
        f"{server.url}/api/auth/login", json={"username": username, "password": password}
    )
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def test_first_login_asks_for_a_new_password(tmp_path: Path, page: Page) -> None:
    with serving(tmp_path / "data", admin_password="ods1234!") as fresh:
        log_in(page, fresh.url, "ods1234!")
        expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
        page.get_by_label("New password", exact=True).fill("a brand new passphrase")
        page.get_by_label("New password again").fill("a brand new passphrase")
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("heading", name="Server settings")).to_be_visible()
        expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()

        # The token lives in this tab's sessionStorage only: a reload keeps the session.
        assert page.evaluate("sessionStorage.getItem('ods.token')").startswith("ods_")
        assert page.evaluate("localStorage.length") == 0
        assert page.context.cookies() == []
        page.reload()
        expect(page.get_by_role("heading", name="Server settings")).to_be_visible()

        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_text("You are logged out.")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('ods.token')") is None
        log_in(page, fresh.url, "a brand new passphrase")
        expect(page.get_by_role("heading", name="Server settings")).to_be_visible()


def test_a_wrong_password_shows_the_api_message(server: OdsServer, page: Page) -> None:
    page.goto(f"{server.url}/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("username or password")


def test_edit_settings(server: OdsServer, page: Page) -> None:
    log_in(page, server.url, PASSWORD)
    page.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog", name="Edit server settings")
    dialog.get_by_label("Name").fill("Console ODS")
    dialog.get_by_label("URL").fill(server.url)
    dialog.get_by_label("Stage").select_option("Test")
    dialog.get_by_label("Firewalled mode").check()
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)

    settings = page.get_by_role("region", name="Server settings")
    expect(settings).to_contain_text("Console ODS")
    expect(settings).to_contain_text("Enabled")
    expect(settings).not_to_contain_text("not set")
    with api(server) as client:
        about = client.get("/api/admin/about").json()
        assert (about["name"], about["url"], about["stage"], about["firewalled_mode"]) == (
            "Console ODS",
            server.url,
            "Test",
            True,
        )
        restored = client.post(
            "/api/admin/about/update", json={"firewalled_mode": "Disabled", "stage": "Prod"}
        )
        assert restored.status_code == 201, restored.text
    expect(settings).to_contain_text("Disabled")  # the server.updated event refreshes it


def test_upload_with_a_stage_becomes_public_with_its_sha1(
    server: OdsServer, page: Page, tmp_path: Path
) -> None:
    path = tmp_path / "Console Upload.pkg"
    content = os.urandom(3 * MIB + 4321)
    path.write_bytes(content)
    log_in(page, server.url, PASSWORD)
    open_tab(page, "Packages")
    # Slow the upload down so that its progress can be seen.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 2 * MIB},
    )

    page.get_by_label("Package file").set_input_files(path)
    page.get_by_label("Stage", exact=True).first.select_option("Test")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_role("button", name="Uploading…")).to_be_disabled()
    progress = page.get_by_role("progressbar", name="Upload progress")
    expect(progress).to_be_visible()
    expect(page.locator(".upload-progress")).to_contain_text("/s")
    expect(page.get_by_role("status").filter(has_text="Uploaded")).to_contain_text(
        hashlib.sha1(content).hexdigest()  # noqa: S324 - the API's compatible digest
    )
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )

    row = package_row(page, path.name)
    expect(row.get_by_role("cell", name="Public")).to_be_visible()
    expect(row).to_contain_text("Test")
    sha1 = hashlib.sha1(content).hexdigest()  # noqa: S324
    expect(row.locator(f'code[title="{sha1}"]')).to_be_visible()
    expect(row.get_by_role("link", name=path.name)).to_have_attribute(
        "href", "/share/Console%20Upload.pkg"
    )

    row.get_by_role("button", name=f"Details of {path.name}").click()
    details = page.get_by_role("dialog", name=path.name)
    expect(details).to_contain_text(hashlib.sha256(content).hexdigest())
    expect(details.locator("tbody tr")).to_have_count(4)  # 1 MiB chunks
    details.get_by_role("button", name="Close").last.click()
    expect(details).to_have_count(0)

    row.get_by_role("button", name=f"Delete {path.name}").click()
    confirm = page.get_by_role("dialog", name=f"Delete {path.name}?")
    confirm.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)


def test_a_failed_registration_shows_the_red_banner(server: OdsServer, page: Page) -> None:
    body = {"url": f"http://127.0.0.1:{free_port()}", "iss_id": "0" * 32, "key": "A" * 43 + "="}
    with api(server) as client:
        named = client.post(
            "/api/admin/about/update", json={"name": "Console ODS", "url": server.url}
        )
        assert named.status_code == 201, named.text
        refused = client.post("/api/admin/register", json=body)
    assert refused.status_code >= 400
    message = refused.json()["message"]

    log_in(page, server.url, PASSWORD)
    open_tab(page, "Network")
    page.get_by_label("URL").fill(body["url"])
    page.get_by_label("ISS ID").fill(body["iss_id"])
    page.get_by_label("Key").fill(body["key"])
    page.get_by_role("button", name="Register").click()
    banner = page.get_by_role("alert")
    expect(banner).to_contain_text(message)
    expect(banner).to_have_css("background-color", "rgb(253, 236, 234)")
    expect(page.get_by_role("region", name="Registered servers")).to_contain_text(
        "No registered servers yet"
    )


def test_the_events_panel_shows_a_new_event_live(server: OdsServer, page: Page) -> None:
    log_in(page, server.url, PASSWORD)
    open_tab(page, "Events")
    events = page.get_by_role("region", name="Events")
    expect(events.get_by_role("status").filter(has_text="Live")).to_be_visible()
    page.evaluate("window.notReloaded = true")
    with api(server) as client:
        created = client.post("/api/admin/tokens", json={"name": "live event check"})
        assert created.status_code == 201, created.text
    expect(events.get_by_role("listitem").first).to_contain_text("'live event check' created")
    assert page.evaluate("window.notReloaded") is True


def test_an_ended_session_goes_back_to_the_login_form(server: OdsServer, page: Page) -> None:
    log_in(page, server.url, PASSWORD)
    expect(page.get_by_role("heading", name="Server settings")).to_be_visible()
    token = page.evaluate("sessionStorage.getItem('ods.token')")
    revoked = httpx.post(
        f"{server.url}/api/auth/logout", headers={"Authorization": f"Bearer {token}"}
    )
    assert revoked.status_code == 204
    # The next request the console makes ends the session: this click's, or the Admin
    # tab's refresh of the system figures if that comes first and takes the tab away.
    tab = page.get_by_role("navigation", name="Console").get_by_role("link", name="Users & tokens")
    with contextlib.suppress(PlaywrightTimeoutError):
        tab.click(timeout=5000)
    expect(page.get_by_role("status").filter(has_text="Your session has ended")).to_be_visible()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def test_a_read_only_user_sees_no_actions_they_cannot_take(server: OdsServer, page: Page) -> None:
    with api(server) as client:
        client.post(
            "/api/admin/users",
            json={
                "username": "console-reader",
                "password": "a reader passphrase",
                "role": "read_only",
                "must_change_password": False,
            },
        )
    log_in(page, server.url, "a reader passphrase", username="console-reader")
    settings = page.get_by_role("region", name="Server settings")
    expect(settings).to_contain_text("shown to admins only")
    expect(page.get_by_role("button", name="Edit")).to_have_count(0)
    open_tab(page, "Packages")
    expect(page.get_by_role("heading", name="Packages")).to_be_visible()
    expect(page.get_by_role("heading", name="Upload")).to_have_count(0)
    open_tab(page, "Network")
    expect(page.get_by_role("heading", name="Mesh")).to_be_visible()
    expect(page.get_by_role("heading", name="Register with another server")).to_have_count(0)
    open_tab(page, "Users & tokens")
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    expect(page.get_by_role("button", name="Add user")).to_have_count(0)

    page.get_by_label("Token name").fill("reader script")
    page.get_by_role("button", name="Create token").click()
    new_token = page.get_by_label("New token", exact=True)
    expect(new_token).to_contain_text("ods_")
    reader = httpx.get(
        f"{server.url}/api/auth/me",
        headers={"Authorization": f"Bearer {new_token.inner_text()}"},
    )
    assert reader.json()["username"] == "console-reader"


def test_the_api_reference_is_served_from_this_server(server: OdsServer, page: Page) -> None:
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda request: (
            elsewhere.append(request.url) if not request.url.startswith(server.url) else None
        ),
    )
    response = page.goto(f"{server.url}/docs")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_role("heading", name=re.compile("ODS admin API"))).to_be_visible()
    expect(page.get_by_text("/api/auth/login").first).to_be_visible()
    assert elsewhere == []
