"""core/uuids: the admin API's spelling of a package uuid, and the stored spellings of input."""

from __future__ import annotations

import uuid

import pytest

from ods.core.uuids import public_uuid, public_uuid_or_none, stored_spellings

VERSION = uuid.UUID("28f7adde-4f67-4873-807a-4c8c69b641d0")


@pytest.mark.parametrize(
    "spelling", [str(VERSION), VERSION.hex, str(VERSION).upper(), VERSION.hex.upper()]
)
def test_every_spelling_of_a_uuid_is_shown_as_32_lowercase_hex_digits(spelling: str) -> None:
    assert public_uuid(spelling) == "28f7adde4f674873807a4c8c69b641d0"
    assert stored_spellings(spelling) == (str(VERSION), VERSION.hex)


@pytest.mark.parametrize("other", ["NoMAD.pkg", "u-1", "", "28f7adde4f67", "z" * 32])
def test_what_is_not_a_uuid_is_shown_as_it_is_and_looked_up_by_no_uuid(other: str) -> None:
    assert public_uuid(other) == other
    assert stored_spellings(other) == ()


def test_none_stays_none() -> None:
    assert public_uuid_or_none(None) is None
    assert public_uuid_or_none(str(VERSION)) == VERSION.hex
