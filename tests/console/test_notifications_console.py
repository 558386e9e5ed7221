"""The Notifications tab in Chromium against a real `ods serve`: webhooks posting to a
real recording receiver on loopback, and mail going to a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.helpers.console import api_client, log_in, open_tab
from tests.helpers.processes.serve import OdsServer, serving
from tests.helpers.receivers.http import Receiver, receiving
from tests.helpers.receivers.smtp import SmtpReceiver

pytestmark = pytest.mark.e2e

PASSWORD = "a notifications console passphrase"
SECRET = "a webhook secret for the console"
PAGE_SIZE = 20  # deliveries per page of the log (PAGE_SIZE in webui/notify.js)
DASH = "\u2013"  # an en dash between the first and the last of a page


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with receiving(secret=SECRET) as running:
        yield running


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpReceiver]:
    running = SmtpReceiver(tmp_path_factory.mktemp("smtp")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpReceiver) -> Iterator[OdsServer]:
    """Webhooks may post to loopback (the receiver), retrying fast; mail goes to `smtp`."""
    data_dir = tmp_path_factory.mktemp("notifications") / "data"
    env = {
        "ODS_WEBHOOK_ALLOW": "127.0.0.1",
        "ODS_WEBHOOK_RETRY_SECONDS": "0.2",
        "ODS_WEBHOOK_TIMEOUT": "5",
        **smtp.env(),
    }
    with serving(data_dir, admin_password=PASSWORD, **env) as running:
        yield running


def webhook_row(page: Page, url: str) -> Locator:
    return page.locator(f'tr[data-url="{url}"]')


def test_an_admin_adds_tests_redelivers_edits_and_deletes_a_webhook(
    server: OdsServer, receiver: Receiver, page: Page
) -> None:
    # Markup in the URL is shown as text, never made into elements.
    url = f"{receiver.url}?from=<b>ods</b>"
    log_in(page, server.url, PASSWORD)
    open_tab(page, "Notifications")
    card = page.get_by_role("region", name="Webhooks")
    expect(card.get_by_text("No webhooks")).to_be_visible()

    card.get_by_role("button", name="Add webhook").click()
    dialog = page.get_by_role("dialog", name="Add webhook")
    dialog.get_by_label("URL").fill(url)
    dialog.get_by_label("Every kind").uncheck()
    dialog.get_by_label("package.uploaded").check()
    dialog.get_by_label("webhook.ping").check()
    # No secret for a signed (ods) webhook: the API's refusal shows in the dialog.
    dialog.get_by_role("button", name="Add webhook").click()
    expect(dialog.get_by_role("alert")).to_contain_text("give it a secret")
    dialog.get_by_label("Secret").fill(SECRET)
    dialog.get_by_role("button", name="Add webhook").click()
    expect(dialog).to_have_count(0)

    row = webhook_row(page, url)
    expect(row).to_contain_text("package.uploaded, webhook.ping")
    expect(row).to_contain_text("enabled")
    expect(row).to_contain_text("none yet")
    expect(row).to_contain_text("/hook?from=<b>ods</b>")
    expect(row.locator("b")).to_have_count(0)

    row.get_by_role("button", name="Send test").click()
    expect(card.get_by_role("status").filter(has_text="Test to")).to_contain_text(
        "delivered · HTTP 200"
    )
    received = receiver.wait_for(1)
    assert received[0].headers["x-ods-event"] == "webhook.ping"
    assert received[0].signature_ok is True
    expect(row).to_contain_text("HTTP 200")

    # The receiver fails the next one: the log shows it, and a redelivery gets through.
    receiver.answers.append(500)
    row.get_by_role("button", name="Send test").click()
    expect(card.get_by_role("alert").filter(has_text="Test to")).to_contain_text(
        "failed · HTTP 500"
    )
    row.get_by_role("button", name="Deliveries").click()
    log = page.get_by_role("dialog", name=f"Deliveries to {url}")
    deliveries = log.get_by_role("table", name="Deliveries, newest first").locator("tbody tr")
    expect(deliveries).to_have_count(2)
    expect(deliveries.nth(0)).to_contain_text("failed")
    expect(deliveries.nth(0)).to_contain_text("HTTP 500")
    expect(deliveries.nth(1)).to_contain_text("delivered")
    expect(deliveries.nth(1)).to_contain_text("HTTP 200")
    failed_id = deliveries.nth(0).get_attribute("data-delivery")
    log.get_by_role("button", name=f"Redeliver delivery {failed_id}").click()
    expect(log.get_by_role("status")).to_contain_text(f"Delivery {failed_id} sent again")
    expect(deliveries).to_have_count(3)
    expect(deliveries.nth(0)).to_contain_text("delivered")
    expect(deliveries.nth(0)).to_contain_text("HTTP 200")
    assert len(receiver.wait_for(3)) == 3
    assert receiver.bad_signatures == 0

    # More than a page: the log pages through them by the API's total.
    with api_client(server.url, PASSWORD) as api:
        [hook] = api.get("/api/admin/webhooks").json()["items"]
        for _ in range(PAGE_SIZE):
            tested = api.post(f"/api/admin/webhooks/{hook['id']}/test")
            assert tested.json()["status"] == "delivered", tested.text
    pages = log.get_by_role("navigation", name="Pages")
    expect(pages).to_contain_text(f"1{DASH}{PAGE_SIZE} of {PAGE_SIZE + 3}")
    expect(deliveries).to_have_count(PAGE_SIZE)
    pages.get_by_role("button", name="Older").click()
    expect(pages).to_contain_text(f"{PAGE_SIZE + 1}{DASH}{PAGE_SIZE + 3} of {PAGE_SIZE + 3}")
    expect(deliveries).to_have_count(3)
    expect(deliveries.nth(2)).to_contain_text("HTTP 200")
    expect(pages.get_by_role("button", name="Older")).to_be_disabled()
    pages.get_by_role("button", name="Newer").click()
    expect(deliveries).to_have_count(PAGE_SIZE)
    log.get_by_role("button", name="Close", exact=True).first.click()
    expect(log).to_have_count(0)

    # Edit: every kind, disabled; the secret left empty stays.
    row.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog", name="Edit webhook")
    expect(dialog.get_by_label("URL")).to_have_value(url)
    expect(dialog.get_by_label("Secret")).to_have_value("")
    dialog.get_by_label("Every kind").check()
    dialog.get_by_label("Enabled").uncheck()
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    expect(row).to_contain_text("every kind")
    expect(row).to_contain_text("disabled")
    with api_client(server.url, PASSWORD) as api:
        [hook] = api.get("/api/admin/webhooks").json()["items"]
    assert (hook["events"], hook["enabled"], hook["has_secret"]) == ([], False, True)

    row.get_by_role("button", name="Delete").click()
    confirm = page.get_by_role("dialog", name="Delete this webhook?")
    confirm.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    expect(card.get_by_text("No webhooks")).to_be_visible()


def test_an_admin_adds_an_email_subscription_and_sends_a_test_mail(
    server: OdsServer, smtp: SmtpReceiver, page: Page
) -> None:
    address = "mac-admins@example.org"
    log_in(page, server.url, PASSWORD)
    open_tab(page, "Notifications")
    card = page.get_by_role("region", name="Email subscriptions")
    card.get_by_role("button", name="Add subscription").click()
    dialog = page.get_by_role("dialog", name="Add email subscription")
    dialog.get_by_label("Address").fill(address)
    dialog.get_by_label("Every kind").uncheck()
    dialog.get_by_label("package.failed").check()
    dialog.get_by_role("button", name="Add subscription").click()
    expect(dialog).to_have_count(0)

    row = page.locator(f'tr[data-address="{address}"]')
    expect(row).to_contain_text("package.failed")
    expect(row).to_contain_text("one mail per event")

    row.get_by_role("button", name="Send test mail").click()
    expect(card.get_by_role("status").filter(has_text="Test mail to")).to_contain_text("delivered")
    [mail] = [mail for mail in smtp.wait_for(1) if mail["To"] == address]
    assert mail["From"] == "ods@example.org"

    row.get_by_role("button", name="Mail log").click()
    log = page.get_by_role("dialog", name=f"Mail to {address}")
    mails = log.get_by_role("table", name="Mails, newest first").locator("tbody tr")
    expect(mails).to_have_count(1)
    expect(mails.nth(0)).to_contain_text("ping")
    expect(mails.nth(0)).to_contain_text("delivered")
    log.get_by_role("button", name="Close", exact=True).first.click()

    row.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog", name="Edit email subscription")
    expect(dialog.get_by_label("Address")).to_have_value(address)
    expect(dialog.get_by_label("package.failed")).to_be_checked()
    dialog.get_by_label("Digest every (minutes)").fill("60")
    dialog.get_by_role("button", name="Save").click()
    expect(row).to_contain_text("a digest every 60 minutes")

    row.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog", name=f"Stop mailing {address}?").get_by_role(
        "button", name="Delete"
    ).click()
    expect(row).to_have_count(0)
    expect(card.get_by_text("No email subscriptions")).to_be_visible()


def test_only_admins_get_the_notification_actions(server: OdsServer, page: Page) -> None:
    with api_client(server.url, PASSWORD) as api:
        created = api.post(
            "/api/admin/users",
            json={
                "username": "helpdesk",
                "password": "a helpdesk passphrase",
                "role": "package_manager",
                "must_change_password": False,
            },
        )
        assert created.status_code == 201, created.text
    log_in(page, server.url, "a helpdesk passphrase", username="helpdesk")
    open_tab(page, "Notifications")
    expect(page.get_by_role("status").filter(has_text="only admins manage")).to_be_visible()
    expect(page.get_by_role("button", name="Add webhook")).to_have_count(0)
    expect(page.get_by_role("button", name="Add subscription")).to_have_count(0)
