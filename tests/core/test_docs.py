"""The admin documentation stays true to the code: every setting, every
endpoint, every relative link."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ods.app import create_app
from ods.core.config import Settings, env_names

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

SETTING_ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|(.*)\|(.*)\|\s*$")
ENDPOINT_HEADING = re.compile(r"^#{2,4} `([A-Z]+(?:/[A-Z]+)*) (/[^`\s]*)`", re.MULTILINE)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def settings_table() -> dict[str, tuple[str, str]]:
    """`| `NAME` | meaning | default |` rows of docs/configuration.md."""
    rows: dict[str, tuple[str, str]] = {}
    for line in (DOCS / "configuration.md").read_text(encoding="utf-8").splitlines():
        match = SETTING_ROW.match(line)
        if match:
            name, meaning, default = match.groups()
            assert name not in rows, f"{name} is documented twice"
            rows[name] = (meaning.strip(), default.strip())
    return rows


def test_every_setting_is_documented() -> None:
    expected = {name for field in Settings.model_fields.values() for name in env_names(field)}
    expected.add("ODS_CONF")
    documented = set(settings_table())
    assert documented - expected == set(), "documented but not a setting"
    assert expected - documented == set(), "settings missing from docs/configuration.md"


def test_every_setting_has_a_meaning_and_a_default() -> None:
    for name, (meaning, default) in settings_table().items():
        assert meaning, f"{name} has no meaning in docs/configuration.md"
        assert default, f"{name} has no default in docs/configuration.md"


def test_documented_defaults_match_the_code() -> None:
    table = settings_table()
    for field in Settings.model_fields.values():
        if field.default is None:
            continue
        shown = str(field.default).lower() if isinstance(field.default, bool) else field.default
        for name in env_names(field):
            assert f"{shown}" in table[name][1], f"{name}: the default is {field.default}"


def test_readme_names_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "scripts/serve" in readme
    assert "scripts/test" in readme


def test_serve_script_is_executable() -> None:
    script = ROOT / "scripts" / "serve"
    assert script.is_file()
    assert script.stat().st_mode & 0o111


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(slug)
    return found


def relative_links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)
    return [
        target
        for target in LINK.findall(text)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    for target in relative_links(page):
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: broken link {target}"
        if fragment and linked.suffix == ".md":
            assert fragment in anchors(linked), f"{page.name}: no heading for {target}"


def endpoint(method: str, path: str) -> tuple[str, str]:
    """Path parameters compare by position, not name: `{ref}` is `{id_or_filename}`."""
    return method, re.sub(r"\{[^}]*\}", "{}", path)


def documented_endpoints() -> set[tuple[str, str]]:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    return {
        endpoint(method, path)
        for methods, path in ENDPOINT_HEADING.findall(text)
        for method in methods.split("/")
    }


# share.py gives GET and HEAD one operation id; that is not this test's concern.
@pytest.mark.filterwarnings("ignore:Duplicate Operation ID:UserWarning")
def test_api_reference_matches_the_routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ODS_CONF", raising=False)
    schema = create_app(Settings(data_dir=tmp_path)).openapi()
    routes = {
        endpoint(method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
    }
    documented = documented_endpoints()
    assert documented - routes == set(), "docs/api.md documents endpoints that do not exist"
    assert routes - documented == set(), "endpoints missing from docs/api.md"
