"""Check a Range header before the file response honours it."""

from __future__ import annotations

import re

from ods.errors import RangeNotSatisfiable

RANGE_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def check_range(header: str | None, size: int) -> bool:
    """True when the Range header is usable; False when it should be ignored
    (malformed or not in bytes, as RFC 9110 allows); 416 when nothing in it
    lies within the file."""
    if not header:
        return False
    units, _, specs = header.partition("=")
    if units.strip().lower() != "bytes" or not specs:
        return False
    satisfiable = False
    for spec in specs.split(","):
        match = RANGE_SPEC.match(spec)
        if not match or match.groups() == ("", ""):
            return False
        first, last = match.groups()
        if first and last and int(last) < int(first):
            return False
        if (first and int(first) < size) or (not first and int(last) > 0 and size > 0):
            satisfiable = True
    if not satisfiable:
        raise RangeNotSatisfiable(
            f"The requested range is outside the file ({size} bytes).",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return True
