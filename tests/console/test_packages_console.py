"""The Packages tab in Chromium against a real `ods serve`: stage change, replace,
search/filter/sort, drag-and-drop upload, copying a digest, and a phone screen.

Every test names its packages with its own random tag, so the tests share one
server and still run in any order, alone or in parallel.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.helpers.console import log_in, open_tab, package_row
from tests.helpers.packages import uploaded_blocking
from tests.helpers.processes.serve import OdsServer, serving

pytestmark = pytest.mark.e2e

PASSWORD = "a packages console passphrase"
KIB = 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OdsServer]:
    """One server for the module; each test only touches its own packages."""
    with serving(tmp_path_factory.mktemp("packages") / "data", admin_password=PASSWORD) as running:
        yield running


def api(server: OdsServer) -> httpx.Client:
    """The admin API with a fresh token (plain httpx: Playwright's loop runs here)."""
    login = httpx.post(
        f"{server.url}/api/auth/login", json={"username": "admin", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def tag() -> str:
    """A prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


def sha1(content: bytes) -> str:
    return hashlib.sha1(content).hexdigest()  # noqa: S324 - the API's compatible digest


def package(client: httpx.Client, ref: int | str) -> dict[str, Any]:
    answer = client.get(f"/api/admin/packages/{ref}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_promote_a_package_through_the_stage_dialog(server: OdsServer, page: Page) -> None:
    filename = f"{tag()} Stage Tool.pkg"
    with api(server) as client:
        uploaded = uploaded_blocking(client, filename, os.urandom(20 * KIB), "Dev")

    log_in(page, server.url, PASSWORD)
    open_tab(page, "Packages")
    row = package_row(page, filename)
    expect(row.get_by_role("cell", name="Dev", exact=True)).to_be_visible()

    row.get_by_role("button", name=f"Change stage of {filename}").click()
    dialog = page.get_by_role("dialog", name=f"Change the stage of {filename}")
    expect(dialog).to_contain_text("Now Dev.")
    # The confirmation button says what happens, and follows the chosen stage.
    expect(dialog.get_by_role("button", name="Change stage")).to_be_visible()
    dialog.get_by_label("New stage").select_option("Prod")
    confirm = dialog.get_by_role("button", name="Promote to Prod")
    expect(confirm).to_be_enabled()
    confirm.click()
    expect(dialog).to_have_count(0)

    expect(row.get_by_role("cell", name="Prod", exact=True)).to_be_visible()
    expect(row.get_by_role("cell", name="Dev", exact=True)).to_have_count(0)
    with api(server) as client:
        changed = package(client, uploaded["id"])
        assert (changed["filename"], changed["stage"], changed["status"]) == (
            filename,
            "Prod",
            "Public",
        )
        assert changed["sha1"] == uploaded["sha1"]  # the same file, only its stage changed
        assert package(client, filename)["stage"] == "Prod"

    # Cancelling the dialog changes nothing.
    row.get_by_role("button", name=f"Change stage of {filename}").click()
    dialog.get_by_label("New stage").select_option("Dev")
    expect(dialog.get_by_role("button", name="Demote to Dev")).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(row.get_by_role("cell", name="Prod", exact=True)).to_be_visible()
    with api(server) as client:
        assert package(client, uploaded["id"])["stage"] == "Prod"


def test_replace_a_package_through_the_replace_dialog(
    server: OdsServer, page: Page, tmp_path: Path
) -> None:
    filename = f"{tag()} Replaced Tool.pkg"
    old = os.urandom(30 * KIB)
    new = os.urandom(1300 * KIB)  # two chunks
    with api(server) as client:
        uploaded = uploaded_blocking(client, filename, old, "Test")
    # The replacement's own name does not matter: it is published under the old one.
    replacement = tmp_path / "build-output-2.pkg"
    replacement.write_bytes(new)

    log_in(page, server.url, PASSWORD)
    open_tab(page, "Packages")
    row = package_row(page, filename)
    expect(row.locator(f'code[title="{sha1(old)}"]')).to_be_visible()

    row.get_by_role("button", name=f"Replace {filename}").click()
    dialog = page.get_by_role("dialog", name=f"Replace {filename}")
    expect(dialog).to_contain_text("deleted here and on every registered server")
    submit = dialog.get_by_role("button", name="Replace", exact=True)
    expect(submit).to_be_disabled()  # nothing chosen yet
    dialog.get_by_label("Replacement file").set_input_files(replacement)
    expect(dialog.get_by_label("Stage")).to_have_value("Test")
    expect(submit).to_be_enabled()
    submit.click()
    expect(dialog).to_have_count(0)

    expect(row.locator(f'code[title="{sha1(new)}"]')).to_be_visible()
    expect(row.locator(f'code[title="{sha1(old)}"]')).to_have_count(0)
    expect(row.get_by_role("cell", name="Public")).to_be_visible()
    expect(row.get_by_role("cell", name="Test", exact=True)).to_be_visible()
    expect(package_row(page, replacement.name)).to_have_count(0)
    with api(server) as client:
        now = package(client, filename)
        assert now["sha1"] == sha1(new)
        assert now["sha256"] == hashlib.sha256(new).hexdigest()
        assert (now["file_size"], now["stage"], now["status"]) == (len(new), "Test", "Public")
        assert now["uuid"] != uploaded["uuid"]
        assert len(now["chunks"]) == 2
        same_name = client.get("/api/admin/packages", params={"search": filename}).json()
        assert same_name["total"] == 1
    assert (server.share_dir / filename).read_bytes() == new


def test_search_filter_and_sort_the_list(server: OdsServer, page: Page) -> None:
    prefix = tag()
    # Creation order, size order and name order all differ.
    packages = {
        f"{prefix}-beta.pkg": (3 * KIB, "Test"),
        f"{prefix}-alpha.dmg": (9 * KIB, "Dev"),
        f"{prefix}-gamma.msi": (1 * KIB, "Prod"),
    }
    other = f"{tag()}-unrelated.pkg"
    with api(server) as client:
        for name, (size, stage) in packages.items():
            uploaded_blocking(client, name, os.urandom(size), stage)
        uploaded_blocking(client, other, os.urandom(2 * KIB), "Test")

    log_in(page, server.url, PASSWORD)
    open_tab(page, "Packages")
    expect(package_row(page, other)).to_be_visible()
    toolbar = page.get_by_role("search")
    filenames = page.locator("tr[data-filename] td.filename")

    toolbar.get_by_label("Search").fill(prefix)
    expect(filenames).to_have_count(3)
    expect(package_row(page, other)).to_have_count(0)
    # Newest first by default.
    expect(filenames).to_have_text(
        [f"{prefix}-gamma.msi", f"{prefix}-alpha.dmg", f"{prefix}-beta.pkg"]
    )
    expect(page.get_by_role("columnheader", name="Created")).to_have_attribute(
        "aria-sort", "descending"
    )
    expect(page.get_by_text("3 packages", exact=True)).to_be_visible()

    # Sort by size: ascending on the first click, descending on the second.
    page.get_by_role("button", name="Size", exact=True).click()
    expect(page.get_by_role("columnheader", name="Size")).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(page.get_by_role("columnheader", name="Created")).to_have_attribute("aria-sort", "none")
    expect(filenames).to_have_text(
        [f"{prefix}-gamma.msi", f"{prefix}-beta.pkg", f"{prefix}-alpha.dmg"]
    )
    page.get_by_role("button", name="Size", exact=True).click()
    expect(page.get_by_role("columnheader", name="Size")).to_have_attribute(
        "aria-sort", "descending"
    )
    expect(filenames).to_have_text(
        [f"{prefix}-alpha.dmg", f"{prefix}-beta.pkg", f"{prefix}-gamma.msi"]
    )
    # By filename, and by stage in stage order (Dev < Test < Prod), not by name.
    page.get_by_role("button", name="Filename", exact=True).click()
    expect(filenames).to_have_text(
        [f"{prefix}-alpha.dmg", f"{prefix}-beta.pkg", f"{prefix}-gamma.msi"]
    )
    page.get_by_role("button", name="Stage", exact=True).click()
    expect(page.get_by_role("columnheader", name="Stage")).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(filenames).to_have_text(
        [f"{prefix}-alpha.dmg", f"{prefix}-beta.pkg", f"{prefix}-gamma.msi"]
    )
    page.get_by_role("button", name="Stage", exact=True).click()
    expect(filenames).to_have_text(
        [f"{prefix}-gamma.msi", f"{prefix}-beta.pkg", f"{prefix}-alpha.dmg"]
    )

    # Filter by stage, within the search.
    stage_filter = toolbar.get_by_label("Stage")
    stage_filter.select_option("Test")
    expect(filenames).to_have_text([f"{prefix}-beta.pkg"])
    expect(page.get_by_text("1 package", exact=True)).to_be_visible()
    stage_filter.select_option("Prod")
    expect(filenames).to_have_text([f"{prefix}-gamma.msi"])

    # Filter by status: all of them are Public, none Failed.
    stage_filter.select_option("All stages")
    status_filter = toolbar.get_by_label("Status")
    status_filter.select_option("Failed")
    expect(filenames).to_have_count(0)
    expect(page.get_by_text("No package matches")).to_be_visible()
    status_filter.select_option("Public")
    expect(filenames).to_have_count(3)
    for name in packages:
        expect(package_row(page, name).get_by_role("cell", name="Public")).to_be_visible()

    # Search is by part of the filename; clearing it shows the others again.
    toolbar.get_by_label("Search").fill(f"{prefix}-alp")
    expect(filenames).to_have_text([f"{prefix}-alpha.dmg"])
    toolbar.get_by_label("Search").fill("")
    status_filter.select_option("All statuses")
    expect(package_row(page, other)).to_be_visible()
    for name in packages:
        expect(package_row(page, name)).to_be_visible()


def test_drag_and_drop_upload(server: OdsServer, page: Page) -> None:
    filename = f"{tag()} Dropped.pkg"
    content = os.urandom(1100 * KIB)
    log_in(page, server.url, PASSWORD)
    open_tab(page, "Packages")
    zone = page.locator(".dropzone")
    expect(zone).to_contain_text("Drop packages here")

    transfer = page.evaluate_handle(
        """([name, encoded]) => {
            const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: 'application/octet-stream' }));
            return transfer;
        }""",
        [filename, base64.b64encode(content).decode()],
    )
    zone.dispatch_event("dragover", {"dataTransfer": transfer})
    expect(zone).to_have_class("dropzone dragging")
    zone.dispatch_event("drop", {"dataTransfer": transfer})
    expect(zone).to_have_class("dropzone")
    expect(zone).to_contain_text(f"{filename} (1.1 MB)")

    page.get_by_role("region", name="Upload").get_by_label("Stage").select_option("Dev")
    page.get_by_role("button", name="Upload", exact=True).click()
    banner = page.get_by_role("status").filter(has_text="Uploaded")
    expect(banner).to_contain_text(filename)
    expect(banner).to_contain_text(sha1(content))

    row = package_row(page, filename)
    expect(row.get_by_role("cell", name="Public")).to_be_visible()
    expect(row.get_by_role("cell", name="Dev", exact=True)).to_be_visible()
    expect(row.locator(f'code[title="{sha1(content)}"]')).to_be_visible()
    with api(server) as client:
        found = package(client, filename)
        assert (found["sha1"], found["stage"], found["status"], found["file_size"]) == (
            sha1(content),
            "Dev",
            "Public",
            len(content),
        )
        assert found["sha256"] == hashlib.sha256(content).hexdigest()


def test_copy_a_digest_to_the_clipboard(server: OdsServer, page: Page) -> None:
    filename = f"{tag()} Copied.pkg"
    content = os.urandom(12 * KIB)
    with api(server) as client:
        uploaded = uploaded_blocking(client, filename, content, "Prod")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)

    log_in(page, server.url, PASSWORD)
    open_tab(page, "Packages")
    row = package_row(page, filename)
    copy_sha1 = row.get_by_role("button", name=f"Copy SHA1 of {filename}")
    expect(copy_sha1).to_have_text("Copy")
    copy_sha1.click()
    expect(copy_sha1).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == uploaded["sha1"] == sha1(content)
    expect(copy_sha1).to_have_text("Copy")  # the feedback goes away by itself

    row.get_by_role("button", name=f"Copy SHA-256 of {filename}").click()
    expect(row.get_by_role("button", name=f"Copy SHA-256 of {filename}")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == hashlib.sha256(content).hexdigest()

    # The full digest in the details dialog too.
    row.get_by_role("button", name=f"Details of {filename}").click()
    details = page.get_by_role("dialog", name=filename)
    details.get_by_role("button", name="Copy SHA1").click()
    expect(details.get_by_role("button", name="Copy SHA1")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == sha1(content)


def test_a_phone_screen(server: OdsServer, page: Page) -> None:
    filename = f"{tag()} A Rather Long Package Name For A Small Phone Screen v1.2.3.pkg"
    with api(server) as client:
        uploaded_blocking(client, filename, os.urandom(5 * KIB), "Test")
    page.set_viewport_size({"width": 390, "height": 844})

    def fits() -> None:
        """The page never scrolls sideways: the body fits the 390 px screen."""
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]"
        )
        assert widths[2] == 390, widths
        assert widths[0] <= 390, widths
        assert widths[1] <= 390, widths

    log_in(page, server.url, PASSWORD)
    expect(page.get_by_role("heading", name="Server settings")).to_be_visible()
    fits()

    open_tab(page, "Packages")
    expect(page.get_by_role("heading", name="Packages")).to_be_visible()
    row = package_row(page, filename)
    expect(row).to_be_visible()
    # One card per package, each cell labelled, the header row hidden.
    expect(page.get_by_role("columnheader", name="Filename")).to_be_hidden()
    expect(row.get_by_role("link", name=filename)).to_be_visible()
    # The labels come from CSS (td[data-label]::before), so they are in the cells' names.
    expect(row.get_by_role("cell", name="Stage Test", exact=True)).to_be_visible()
    expect(row.get_by_role("cell", name="Status Public", exact=True)).to_be_visible()
    expect(row.get_by_role("button", name=f"Delete {filename}")).to_be_visible()
    box = row.bounding_box()
    assert box is not None
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= 390, box
    fits()

    open_tab(page, "Users & tokens")
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    fits()
    open_tab(page, "Events")
    expect(page.get_by_role("region", name="Events")).to_be_visible()
    fits()
    open_tab(page, "Network")
    expect(page.get_by_role("heading", name="Mesh")).to_be_visible()
    fits()
    open_tab(page, "Packages")
    expect(row).to_be_visible()
    fits()
