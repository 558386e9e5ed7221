"""Browser fixtures: Debian's Chromium, headless, driven by Playwright's sync API.

The tests need /usr/bin/chromium (scripts/test installs it with apt); without
it they fail, they never skip. Playwright's own browser downloads are never
used. Every test gets a fresh browser (its own profile, sessionStorage and
cookies); a JavaScript error in the page fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.helpers.console import CHROMIUM, launch_chromium, provoked_on_purpose

# Generous: under `pytest -n auto` the servers and the browser share two cores.
expect.set_options(timeout=15_000)


# Per test, not per session: while Playwright's sync API is open it runs an
# event loop in this thread, and pytest-asyncio could not run the async tests
# that the same worker picks up next.
@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium package "
            "(scripts/test does it: apt-get install chromium)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"console error: {message.text}")
            if message.type == "error" and not provoked_on_purpose(message.text)
            else None
        ),
    )
    try:
        yield page
    finally:
        context.close()
    assert errors == [], "JavaScript errors in the console"
