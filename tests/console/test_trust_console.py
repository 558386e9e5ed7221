"""The Trust card of the Network tab, and a package's origin in its Details dialog:
Chromium against two real servers registered with each other."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route, expect
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.console import api_client, log_in, open_tab, package_row
from tests.helpers.packages import MIB
from tests.helpers.processes.mesh import PASSWORD, Node, mesh_of, random_file

pytestmark = pytest.mark.e2e

READER_PASSWORD = "a trust reader passphrase"


def client(node: Node) -> httpx.Client:
    return api_client(node.url, PASSWORD)


def reconciled(node: Node) -> float:
    """How many reconciliations `node` has finished (its /metrics)."""
    text = httpx.get(f"{node.url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ods_jobs_total" and sample.labels == {
                "kind": "reconcile",
                "outcome": "done",
            }:
                return sample.value
    return 0.0


@contextmanager
def registered_pair(root: Path) -> Iterator[tuple[Node, Node]]:
    """Two named servers, the first registered with the second: each has the other's
    key pinned. Waits for the reconciliation that follows the registration, so that
    nothing pins a key again while a test looks (the next one is an hour away)."""
    with mesh_of(root, 2, ODS_RECONCILE_INTERVAL="3600") as (first, second):
        abouts = []
        for node in (first, second):
            with client(node) as api:
                named = api.post(
                    "/api/admin/about/update", json={"name": node.name, "url": node.url}
                )
                assert named.status_code == 201, named.text
                abouts.append(api.get("/api/admin/about").json())
        with client(first) as api:
            body = {"url": second.url, "iss_id": abouts[1]["iss"], "key": abouts[1]["key"]}
            registered = api.post("/api/admin/register", json=body)
            assert registered.status_code == 201, registered.text
        deadline = time.monotonic() + 60
        while reconciled(first) < 1:
            assert time.monotonic() < deadline, "the first reconciliation did not end"
            time.sleep(0.2)
        yield first, second


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    """One pair for the module; each test leaves the policy at `any` and the keys pinned."""
    with registered_pair(tmp_path_factory.mktemp("trust")) as nodes:
        yield nodes


def trust(node: Node) -> dict[str, Any]:
    with client(node) as api:
        answer = api.get("/api/admin/trust")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def iss_of(node: Node) -> str:
    with client(node) as api:
        iss: str = api.get("/api/admin/about").json()["iss"]
    return iss


def test_an_admin_lists_one_origin_then_takes_any_again(
    pair: tuple[Node, Node], page: Page
) -> None:
    first, second = pair
    mine = trust(first)
    with client(first) as api:
        refused = api.put("/api/admin/trust", json={"policy": "listed", "origins": ["not-an-iss"]})
    assert refused.status_code == 422, refused.text

    log_in(page, first.url, PASSWORD)
    open_tab(page, "Network")
    card = page.get_by_role("region", name="Trust")
    expect(card).to_contain_text(mine["fingerprint"])
    expect(card).to_contain_text("Packages from any server of the mesh")
    expect(card.get_by_role("listitem")).to_have_count(0)

    try:
        card.get_by_role("button", name="Edit policy").click()
        dialog = page.get_by_role("dialog", name="Edit the trust policy")
        dialog.get_by_label("Only from listed origins").check()
        this_server = dialog.get_by_label(f"{first.name} (this server)")
        expect(this_server).to_be_checked()
        expect(this_server).to_be_disabled()
        # A mistyped ISS ID: the API's refusal shows in the dialog, which stays open.
        dialog.get_by_label("Another origin's ISS ID").fill("not-an-iss")
        dialog.get_by_role("button", name="Add").click()
        dialog.get_by_role("button", name="Save").click()
        expect(dialog.get_by_role("alert")).to_contain_text(refused.json()["message"])
        dialog.get_by_label("not-an-iss").uncheck()
        dialog.get_by_label(second.name, exact=True).check()
        dialog.get_by_role("button", name="Save").click()
        expect(dialog).to_have_count(0)

        expect(card).to_contain_text("Packages only from listed origins")
        expect(card.get_by_role("listitem")).to_have_text([second.name])
        listed = trust(first)
        assert (listed["policy"], listed["origins"]) == ("listed", [iss_of(second)])

        card.get_by_role("button", name="Edit policy").click()
        dialog.get_by_label("From any server of the mesh").check()
        dialog.get_by_role("button", name="Save").click()
        expect(dialog).to_have_count(0)
        expect(card).to_contain_text("Packages from any server of the mesh")
        expect(card.get_by_role("listitem")).to_have_count(0)
        again = trust(first)
        assert (again["policy"], again["origins"]) == ("any", [])
    finally:
        with client(first) as api:
            api.put("/api/admin/trust", json={"policy": "any"})


def test_a_read_only_user_sees_the_trust_card_without_its_actions(
    pair: tuple[Node, Node], page: Page
) -> None:
    first, second = pair
    with client(first) as api:
        created = api.post(
            "/api/admin/users",
            json={
                "username": "trust-reader",
                "password": READER_PASSWORD,
                "role": "read_only",
                "must_change_password": False,
            },
        )
        assert created.status_code == 201, created.text
    theirs = trust(second)

    log_in(page, first.url, READER_PASSWORD, username="trust-reader")
    open_tab(page, "Network")
    card = page.get_by_role("region", name="Trust")
    expect(card).to_contain_text(trust(first)["fingerprint"])
    expect(card).to_contain_text("Packages from any server of the mesh")
    row = card.get_by_role("row").filter(has_text=second.name)
    expect(row).to_contain_text(theirs["fingerprint"])
    expect(row).to_contain_text("the server itself")
    expect(card.get_by_role("button", name="Edit policy")).to_have_count(0)
    expect(card.get_by_role("button", name=re.compile("^Unpin"))).to_have_count(0)
    expect(card.get_by_role("button", name="Copy fingerprint")).to_be_visible()


def test_the_details_dialog_shows_a_package_origin_and_its_signature(
    pair: tuple[Node, Node], page: Page, tmp_path: Path
) -> None:
    first, second = pair
    theirs = tmp_path / "From The Peer.pkg"
    random_file(theirs, 2 * MIB + 17)
    mine = tmp_path / "Uploaded Here.pkg"
    random_file(mine, 1234)
    for node, path in ((second, theirs), (first, mine)):
        with client(node) as api, path.open("rb") as handle:
            uploaded = api.post("/api/admin/upload", files={"file": (path.name, handle)})
            assert uploaded.status_code == 201, uploaded.text

    log_in(page, first.url, PASSWORD)
    open_tab(page, "Packages")
    row = package_row(page, theirs.name)
    expect(row.get_by_role("cell", name="Public")).to_be_visible(timeout=60_000)
    row.get_by_role("button", name=f"Details of {theirs.name}").click()
    details = page.get_by_role("dialog", name=theirs.name)
    origin = details.locator("dt:text-is('Origin') + dd")
    expect(origin).to_contain_text(second.name)
    expect(origin).to_contain_text("Origin signature verified")
    details.get_by_role("button", name="Close").last.click()
    expect(details).to_have_count(0)

    row = package_row(page, mine.name)
    row.get_by_role("button", name=f"Details of {mine.name}").click()
    details = page.get_by_role("dialog", name=mine.name)
    origin = details.locator("dt:text-is('Origin') + dd")
    expect(origin).to_contain_text(f"{first.name} (this server)")
    expect(origin).to_contain_text("Origin signature verified")
    details.get_by_role("button", name="Close").last.click()

    # A version received before servers signed packages, from a server not known here
    # (no real server can make one any more: the answer is rewritten on its way).
    unknown = "f" * 32

    def unsigned(route: Route) -> None:
        answer = route.fetch()
        body = answer.json()
        body.update(origin_iss=unknown, origin_verified=False)
        route.fulfill(response=answer, body=json.dumps(body))

    with client(first) as api:
        package_id = api.get(f"/api/admin/packages/{theirs.name}").json()["id"]
    page.route(f"**/api/admin/packages/{package_id}", unsigned)
    package_row(page, theirs.name).get_by_role("button", name=f"Details of {theirs.name}").click()
    details = page.get_by_role("dialog", name=theirs.name)
    origin = details.locator("dt:text-is('Origin') + dd")
    expect(origin).to_contain_text(unknown)
    expect(origin).to_contain_text("Not verified: received before servers signed packages")
    expect(origin).not_to_contain_text("Origin signature verified")


def test_unpin_removes_a_pinned_key(tmp_path: Path, page: Page) -> None:
    with registered_pair(tmp_path) as (first, second):
        theirs = trust(second)
        log_in(page, first.url, PASSWORD)
        open_tab(page, "Network")
        card = page.get_by_role("region", name="Trust")
        row = card.get_by_role("row").filter(has_text=second.name)
        expect(row).to_contain_text(theirs["fingerprint"])

        row.get_by_role("button", name=f"Unpin the key of {second.name}").click()
        confirm = page.get_by_role("dialog", name=f"Unpin the key of {second.name}?")
        expect(confirm).to_contain_text(theirs["fingerprint"])
        expect(confirm).to_contain_text("The next key seen for that server")
        expect(confirm).to_contain_text("Check the new fingerprint with its admin")
        confirm.get_by_role("button", name="Unpin").click()
        expect(confirm).to_have_count(0)
        expect(row).to_have_count(0)
        expect(card).to_contain_text("No keys pinned yet")
        assert trust(first)["keys"] == []
        # The other side keeps its own pin of the first server.
        assert [key["iss"] for key in trust(second)["keys"]] == [iss_of(first)]
