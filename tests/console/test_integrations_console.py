"""The Integrations card of the Admin tab: Chromium sets up Jamf Pro package records on a
real `ods serve` talking to a stand-in Jamf Pro, checks them, finds drift and repairs it."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.helpers.console import api_client, log_in, open_tab
from tests.helpers.jamf_pro import running_jamf_pro
from tests.helpers.packages import uploaded_blocking
from tests.helpers.processes.serve import serving

pytestmark = pytest.mark.e2e

PASSWORD = "an integrations passphrase"


def test_set_up_check_and_repair_jamf_pro_records(tmp_path: Path, page: Page) -> None:
    with (
        running_jamf_pro() as jamf,
        serving(tmp_path / "data", admin_password=PASSWORD, ODS_JAMF_SYNC_SECONDS="0.2") as ods,
    ):
        log_in(page, ods.url, PASSWORD)
        open_tab(page, "Admin")
        card = page.get_by_role("region", name="Integrations")
        expect(card).to_contain_text("not set up")
        card.get_by_role("button", name="Set up Jamf Pro").click()
        dialog = page.get_by_role("dialog", name="Jamf Pro package records")
        dialog.get_by_label("Jamf Pro URL").fill(jamf.url)
        dialog.get_by_label("API client ID").fill(jamf.client_id)
        dialog.get_by_label("Client secret").fill(jamf.client_secret)
        dialog.get_by_label("Category").fill("Apps")
        dialog.get_by_role("button", name="Save").click()
        expect(dialog).to_have_count(0)
        expect(card.get_by_test_id("jamf-summary")).to_contain_text(jamf.url)

        card.get_by_role("button", name="Check credentials").click()
        expect(card.get_by_test_id("jamf-check")).to_contain_text("accepted the credentials")

        content = b"console jamf package" * 100
        with api_client(ods.url, PASSWORD) as api:
            uploaded_blocking(api, "Console.pkg", content, "Prod")
        deadline = time.monotonic() + 15
        while not jamf.by_filename("Console.pkg") and time.monotonic() < deadline:
            time.sleep(0.05)
        [record] = jamf.by_filename("Console.pkg")
        assert record["hashValue"] == hashlib.sha512(content).hexdigest()
        expect(card.get_by_test_id("jamf-last-sync")).to_contain_text("ok")

        del jamf.packages[record["id"]]
        card.get_by_role("button", name="Find drift").click()
        expect(card.get_by_test_id("jamf-drift")).to_contain_text("No record: Console.pkg")
        card.get_by_role("button", name="Repair drift").click()
        expect(card.get_by_test_id("jamf-drift")).to_contain_text("Repaired.")
        assert len(jamf.by_filename("Console.pkg")) == 1
