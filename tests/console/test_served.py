"""The console's files are served, with their security headers, and nothing else is."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ods.app import create_app
from ods.core.config import load_settings
from ods.web.console import WEBUI_DIR
from tests.helpers.api import TEST_DATABASE_KEY


@pytest.fixture
async def static_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app without its lifespan: static files need no database."""
    app = create_app(load_settings(data_dir=tmp_path, database_key=TEST_DATABASE_KEY))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ods.test") as client:
        yield client


async def test_the_console_is_served_at_the_root(static_client: httpx.AsyncClient) -> None:
    response = await static_client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/ui/app.js"></script>' in response.text
    assert (await static_client.head("/")).status_code == 200


def test_the_page_has_no_inline_script_or_style() -> None:
    page = (WEBUI_DIR / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.DOTALL)
    assert scripts
    assert all('src="' in attributes and not body.strip() for attributes, body in scripts)
    assert "<style" not in page
    assert " style=" not in page
    assert " on" not in re.sub(r"<noscript>.*?</noscript>", "", page, flags=re.DOTALL).lower()


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/ui/app.js", "text/javascript"),
        ("/ui/vendor/htm-preact-standalone.module.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
    ],
)
async def test_assets_are_served(
    static_client: httpx.AsyncClient, path: str, media_type: str
) -> None:
    response = await static_client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].replace("application/", "text/").startswith(media_type)
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("path", ["/ui/missing.js", "/ui/../api/webui.py", "/ui/%2e%2e/app.py"])
async def test_nothing_else_is_served(static_client: httpx.AsyncClient, path: str) -> None:
    response = await static_client.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_every_module_the_console_imports_exists() -> None:
    for module in WEBUI_DIR.glob("*.js"):
        for target in re.findall(r"from '(\./[^']+)'", module.read_text(encoding="utf-8")):
            assert (WEBUI_DIR / target).is_file(), f"{module.name} imports missing {target}"
