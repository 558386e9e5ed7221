"""Screenshots of the web console for the documentation: docs/images/*.png.

    .venv/bin/python scripts/screenshots.py

Starts four real `ods serve` processes on loopback (their data in a temporary
dir), joins them into a small mesh, uploads packages, and photographs each tab
in Debian's Chromium (/usr/bin/chromium) at 1280 px, and the package list on a
phone. One link goes through a slow proxy so that a package is caught
Downloading; one server is stopped so that its link shows unreachable. The
Notifications tab's webhooks post to recording receivers on loopback.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
import time
from contextlib import suppress
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.console import launch_chromium, log_in, open_tab, package_row  # noqa: E402
from tests.helpers.processes.mesh import PASSWORD, Node, mesh_of, random_file  # noqa: E402
from tests.helpers.processes.serve import free_port  # noqa: E402
from tests.helpers.receivers.http import receiving  # noqa: E402

IMAGES = ROOT / "docs" / "images"
MIB = 1024 * 1024
SLOW_BYTES_PER_SECOND = 2 * MIB  # per connection


class SlowProxy:
    """A loopback TCP proxy that passes the server's answers on at a fixed rate."""

    def __init__(self, target_port: int, rate: int) -> None:
        self.target_port = target_port
        self.rate = rate
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(timeout=10)

    async def _listen(self) -> None:
        await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        try:
            server_in, server_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_out.close()
            return
        await asyncio.gather(
            self._pipe(client_in, server_out, None), self._pipe(server_in, client_out, self.rate)
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rate: int | None
    ) -> None:
        with suppress(ConnectionError):
            while data := await reader.read(64 * 1024):
                writer.write(data)
                await writer.drain()
                if rate:
                    await asyncio.sleep(len(data) / rate)
        writer.close()


def client(node: Node) -> httpx.Client:
    return httpx.Client(
        base_url=node.url, headers={"Authorization": f"Bearer {node.token}"}, timeout=120
    )


def prepare(node: Node, name: str, stage: str) -> dict[str, str]:
    answer = httpx.post(
        f"{node.url}/api/auth/login", json={"username": "admin", "password": PASSWORD}
    )
    node.token = answer.json()["token"]
    with client(node) as api:
        api.post("/api/admin/about/update", json={"name": name, "url": node.url, "stage": stage})
        about: dict[str, str] = api.get("/api/admin/about").json()
        return about


def register(node: Node, other: dict[str, str], url: str) -> None:
    with client(node) as api:
        answer = api.post(
            "/api/admin/register", json={"url": url, "iss_id": other["iss"], "key": other["key"]}
        )
        answer.raise_for_status()


def upload(node: Node, path: Path, stage: str) -> None:
    with client(node) as api, path.open("rb") as handle:
        answer = api.post(
            "/api/admin/packages", files={"file": (path.name, handle)}, data={"stage": stage}
        )
        answer.raise_for_status()


def wait_public(node: Node, filename: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    with client(node) as api:
        while time.monotonic() < deadline:
            found = api.get(f"/api/admin/packages/{filename}")
            if found.status_code == 200 and found.json()["status"] == "Public":
                return
            time.sleep(0.3)
    raise RuntimeError(f"{filename} did not become Public on {node.name}")


def shoot(page: Page, name: str) -> None:
    time.sleep(0.6)  # let progress bars and counters settle
    page.screenshot(path=IMAGES / f"{name}.png", full_page=True)
    print(f"docs/images/{name}.png")


def notifications(page: Page, node: Node) -> None:
    """The Notifications tab of `node`: a webhook that works, a Slack one whose
    receiver fails, and a digest subscription; then one webhook's delivery log."""
    with receiving() as tools, receiving() as slack:
        slack.then = 500
        with client(node) as api:
            hooks = [
                api.post("/api/admin/webhooks", json=body).json()
                for body in (
                    {
                        "url": tools.url,
                        "secret": "a long random string",
                        "events": ["package.available", "package.deleted", "peer.unreachable"],
                    },
                    {"url": slack.url, "format": "slack", "events": ["package.failed"]},
                )
            ]
            for hook in hooks:
                api.post(f"/api/admin/webhooks/{hook['id']}/test")
            api.post(
                "/api/admin/email-subscriptions",
                json={"address": "mac-admins@example.org", "events": [], "digest_minutes": 60},
            )
        open_tab(page, "Notifications")
        expect(page.get_by_text("HTTP 500")).to_be_visible()
        shoot(page, "notifications")
        page.get_by_role("button", name=f"Deliveries of {slack.url}").click()
        expect(page.get_by_role("dialog").get_by_text("HTTP 500")).to_be_visible()
        shoot(page, "notifications-log")
        page.keyboard.press("Escape")


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ods-screenshots-") as temp:
        root = Path(temp)
        with mesh_of(root, 4, ODS_WEBHOOK_ALLOW="127.0.0.1") as (hq, branch, lab, dmz):
            about_hq = prepare(hq, "HQ distribution", "Prod")
            prepare(branch, "Branch office Lyon", "Prod")
            about_lab = prepare(lab, "Test lab", "Test")
            about_dmz = prepare(dmz, "DMZ mirror", "Prod")
            proxy = SlowProxy(hq.port, SLOW_BYTES_PER_SECOND)
            proxy.start()
            register(hq, about_lab, lab.url)
            register(hq, about_dmz, dmz.url)
            register(branch, about_hq, proxy.url)  # the branch fetches from HQ, slowly

            with client(hq) as api:
                for username, role in (("autopkg", "package_manager"), ("helpdesk", "read_only")):
                    api.post(
                        "/api/admin/users",
                        json={
                            "username": username,
                            "password": "a long passphrase",
                            "role": role,
                            "must_change_password": role == "read_only",
                        },
                    )
                api.post("/api/admin/tokens", json={"name": "AutoPkg on build-mac-01"})

            packages = [
                ("NoMAD-1.4.0.pkg", 3 * MIB + 71_000, "Prod"),
                ("Firefox-128.0.dmg", 6 * MIB + 12_345, "Prod"),
                ("GoogleChrome-126.pkg", 4 * MIB + 999, "Test"),
                ("install-printers.sh", 18_211, "Dev"),
            ]
            for filename, size, stage in packages:
                path = root / filename
                random_file(path, size)
                upload(hq, path, stage)
            for filename in ("NoMAD-1.4.0.pkg", "Firefox-128.0.dmg"):
                wait_public(branch, filename)

            dmz.stop()  # its link turns red at HQ's next contact
            big = root / "Xcode-CommandLineTools-15.pkg"
            random_file(big, 96 * MIB)

            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                desk = browser.new_context(viewport={"width": 1280, "height": 800})
                page = desk.new_page()

                page.goto(f"{hq.url}/")
                expect(page.get_by_role("button", name="Log in")).to_be_visible()
                shoot(page, "login")

                watcher = desk.new_page()
                log_in(watcher, branch.url, PASSWORD)
                open_tab(watcher, "Packages")
                expect(package_row(watcher, "NoMAD-1.4.0.pkg")).to_be_visible()
                upload(hq, big, "Prod")
                downloading = package_row(watcher, big.name).get_by_role("progressbar")
                expect(downloading).to_be_visible(timeout=60_000)
                time.sleep(2)
                shoot(watcher, "packages")

                phone = browser.new_context(
                    viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
                )
                small = phone.new_page()
                log_in(small, branch.url, PASSWORD)
                open_tab(small, "Packages")
                small.screenshot(path=IMAGES / "phone.png")
                print("docs/images/phone.png")
                phone.close()

                log_in(page, hq.url, PASSWORD)
                expect(page.get_by_role("heading", name="System")).to_be_visible()
                expect(page.get_by_text("CPUs")).to_be_visible()
                shoot(page, "admin")

                open_tab(page, "Network")
                peers = page.get_by_role("region", name="Registered servers")
                expect(peers.get_by_text("Unreachable", exact=True)).to_be_visible(timeout=90_000)
                shoot(page, "network")

                open_tab(page, "Users & tokens")
                page.get_by_label("Token name").fill("Munki repo sync")
                page.get_by_label("Expires after (days)").fill("365")
                page.get_by_role("button", name="Create token").click()
                expect(page.get_by_label("New token", exact=True)).to_be_visible()
                shoot(page, "users")

                open_tab(page, "Events")
                expect(page.get_by_role("listitem").filter(has_text="unreachable")).to_be_visible()
                shoot(page, "events")

                notifications(page, hq)
                browser.close()


if __name__ == "__main__":
    main()
