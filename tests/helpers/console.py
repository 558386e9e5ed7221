"""Driving the web console like an admin: the browser, logging in, the tabs.

Shared by the browser tests and scripts/screenshots.py.
"""

from __future__ import annotations

from playwright.sync_api import Browser, Locator, Page, Playwright, expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless, with a fresh temporary profile."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def log_in(page: Page, url: str, password: str, username: str = "admin") -> None:
    """Open the console and log in; returns on the password page or the console."""
    page.goto(f"{url}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log in")).to_have_count(0)


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Console").get_by_role("link", name=name).click()
    expect(page.get_by_role("link", name=name)).to_have_attribute("aria-current", "page")


def package_row(page: Page, filename: str) -> Locator:
    """The row of one package in the Packages tab."""
    return page.locator(f'tr[data-filename="{filename}"]')


def provoked_on_purpose(text: str) -> bool:
    """Whether a console error is one the tests cause: Chromium logs every non-2xx
    fetch, and the tests provoke some on purpose."""
    return text.startswith("Failed to load resource")
