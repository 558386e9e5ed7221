"""The human-readable `_hr` twins the admin API shows beside raw numbers."""

from __future__ import annotations

import datetime as dt

UNITS = ("bytes", "KB", "MB", "GB", "TB", "PB")


def size_hr(size: int) -> str:
    """`3438044` → `"3.3 MB"` (1024-based, as the original ODS showed sizes)."""
    if size < 1024:
        return "1 byte" if size == 1 else f"{size} bytes"
    # The unit from the bit length (this runs for every row of a package list).
    unit = min((size.bit_length() - 1) // 10, len(UNITS) - 1)
    value = size / (1 << (10 * unit))
    # Compare the rounded figure, so 1048575 bytes reads "1.0 MB", not "1024.0 KB".
    if value >= 1023.95 and unit < len(UNITS) - 1:
        unit += 1
        value /= 1024
    return f"{value:.1f} {UNITS[unit]}"


def duration_hr(seconds: float) -> str:
    """`30806` → `"8:33:26"`; a day or more → `"2 days, 8:33:26"`."""
    return str(dt.timedelta(seconds=int(seconds)))


def iso(moment: dt.datetime) -> str:
    """ISO 8601 without microseconds, UTC, as stored."""
    return moment.replace(microsecond=0).isoformat()


def timestamp(moment: dt.datetime) -> int:
    return int(moment.replace(tzinfo=dt.UTC).timestamp())
