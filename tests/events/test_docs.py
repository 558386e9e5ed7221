"""docs/events.md stays true to the catalogue: every kind, its description, each field and type.

A kind's section is a `### `kind`` heading; its fields are the rows of its
own table and of the shared tables it links to (`[package fields](#package-fields)`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ods.events.catalogue import KINDS
from ods.events.kinds import describe

PAGE = Path(__file__).resolve().parents[2] / "docs" / "events.md"
HEADING = re.compile(r"^### (.+?)\s*$", re.MULTILINE)
ROW = re.compile(r"^\| `(\w+)` \| ([^|]+?) \| ([^|]+?) \|$", re.MULTILINE)
LINK = re.compile(r"\]\(#([\w-]+)\)")
KIND_HEADING = re.compile(r"^`([a-z_.]+)`$")


@dataclass
class Section:
    heading: str
    text: str
    rows: dict[str, tuple[str, str]] = field(default_factory=dict)


def slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def sections() -> list[Section]:
    text = PAGE.read_text(encoding="utf-8")
    found = []
    headings = list(HEADING.finditer(text))
    for match, after in zip(headings, [*headings[1:], None], strict=True):
        end = after.start() if after else len(text)
        # A section ends at the next heading of any level.
        body = re.split(r"^#{1,3} ", text[match.end() : end], maxsplit=1, flags=re.MULTILINE)[0]
        section = Section(heading=match.group(1), text=body)
        for name, kind_type, meaning in ROW.findall(body):
            assert name not in section.rows, f"{match.group(1)}: {name} is listed twice"
            section.rows[name] = (kind_type.strip(), meaning.strip())
        found.append(section)
    return found


def documented() -> dict[str, tuple[Section, dict[str, tuple[str, str]]]]:
    """Each documented kind: its section, and its fields with those of the tables it links to."""
    shared = {slug(s.heading): s for s in sections() if not KIND_HEADING.match(s.heading)}
    kinds: dict[str, tuple[Section, dict[str, tuple[str, str]]]] = {}
    for section in sections():
        match = KIND_HEADING.match(section.heading)
        if match is None:
            continue
        assert match.group(1) not in kinds, f"{match.group(1)} is documented twice"
        rows: dict[str, tuple[str, str]] = {}
        for anchor in LINK.findall(section.text):
            if anchor in shared:
                rows |= shared[anchor].rows
        kinds[match.group(1)] = (section, rows | section.rows)
    return kinds


def test_every_kind_of_the_catalogue_is_documented() -> None:
    assert sorted(set(KINDS) - set(documented())) == [], "kinds missing from docs/events.md"


def test_the_docs_list_no_kind_the_catalogue_lacks() -> None:
    assert sorted(set(documented()) - set(KINDS)) == [], "docs/events.md lists unknown kinds"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_is_documented_with_its_description_and_fields(kind: str) -> None:
    section, rows = documented()[kind]
    described = describe(KINDS[kind])
    assert described.description in " ".join(section.text.split()), f"{kind}: description"
    expected = {item.name: item.type for item in described.fields}
    assert sorted(set(expected) - set(rows)) == [], f"{kind}: fields missing from the docs"
    assert sorted(set(rows) - set(expected)) == [], f"{kind}: documented fields it lacks"
    for name, (documented_type, meaning) in rows.items():
        assert documented_type == expected[name], f"{kind}.{name}: type"
        assert meaning, f"{kind}.{name}: no meaning"
