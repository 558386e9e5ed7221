"""Decide which part of a package a download asks for (Range, If-Range)."""

from __future__ import annotations

import re

from ods.core.errors import RangeNotSatisfiable

# Nineteen digits reach past any file size; longer numbers are not worth parsing.
RANGE_SPEC = re.compile(r"^\s*(\d{0,19})\s*-\s*(\d{0,19})\s*$")


def honoured_range(
    header: str | None,
    size: int,
    *,
    if_range: str | None = None,
    validators: tuple[str, ...] = (),
) -> str | None:
    """The Range to serve, as `bytes=…` with only the satisfiable parts, or None for
    the whole file.

    As RFC 9110 allows, a header that is malformed or not in bytes is ignored, and
    so is one whose If-Range matches none of `validators` (the strong ETag and the
    Last-Modified date). When no part lies within the file: 416.
    """
    if not header:
        return None
    if if_range is not None and if_range.strip() not in validators:
        return None
    units, _, specs = header.partition("=")
    if units.strip().lower() != "bytes" or not specs.strip():
        return None
    satisfiable: list[str] = []
    for spec in specs.split(","):
        match = RANGE_SPEC.match(spec)
        if not match or match.groups() == ("", ""):
            return None
        first, last = match.groups()
        if first and last and int(last) < int(first):
            return None
        if (first and int(first) < size) or (not first and int(last) > 0 and size > 0):
            satisfiable.append(f"{first}-{last}")
    if not satisfiable:
        raise RangeNotSatisfiable(
            f"The requested range is outside the file ({size} bytes).",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return "bytes=" + ",".join(satisfiable)
