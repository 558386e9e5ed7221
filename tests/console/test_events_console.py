"""The Events tab in Chromium: kinds from the catalogue, and each event's data on request."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from ods.events.catalogue import KINDS, PackageConflict, TokenCreated
from tests.helpers.console import api_client, log_in, open_tab
from tests.helpers.processes.serve import OdsServer, serving

pytestmark = pytest.mark.e2e

PASSWORD = "an events console passphrase"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OdsServer]:
    with serving(tmp_path_factory.mktemp("events") / "data", admin_password=PASSWORD) as running:
        yield running


def test_the_kind_filter_lists_the_catalogue(server: OdsServer, page: Page) -> None:
    log_in(page, server.url, PASSWORD)
    open_tab(page, "Events")
    events = page.get_by_role("region", name="Events")
    kind = events.get_by_label("Kind")
    expect(kind.locator("option")).to_have_count(len(KINDS) + 1)
    conflict = kind.locator("option[value='package.conflict']")
    expect(conflict).to_have_attribute("title", PackageConflict.description)

    kind.select_option("token.created")
    expect(events.get_by_text(TokenCreated.description)).to_be_visible()


def test_an_event_shows_its_data_when_its_message_is_clicked(server: OdsServer, page: Page) -> None:
    with api_client(server.url, PASSWORD) as client:
        created = client.post("/api/admin/tokens", json={"name": "AutoPkg", "expires_days": 30})
        assert created.status_code == 201, created.text
    log_in(page, server.url, PASSWORD)
    open_tab(page, "Events")
    item = page.get_by_role("listitem").filter(has_text="API token 'AutoPkg' created")
    data = item.get_by_label("Event data")
    expect(data).to_be_hidden()

    item.get_by_text("API token 'AutoPkg' created").click()
    expect(data).to_be_visible()
    name = data.locator("dt", has_text="username")
    expect(name).to_have_attribute("title", "The username of the token's owner.")
    expect(data).to_contain_text("admin")
    expect(data).to_contain_text(created.json()["expires"])
    expect(data).not_to_contain_text(created.json()["token"])
