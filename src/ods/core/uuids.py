"""Package uuids as the admin API spells them, and as the database may hold them.

The original ODS showed a package's uuid as 32 lowercase hex digits
(`28f7adde4f674873807a4c8c69b641d0`), and scripts written for it compare
them. ODS stores and sends peers the dashed form (`28f7adde-4f67-…`), as
every released version has: statements are signed over it and servers of
the previous release look packages up by it. So the database and the peer
protocol keep it, and the admin API and event data show the hex form, made
here; either form is accepted where a client sends a uuid.
"""

from __future__ import annotations

import re
import uuid

# How ODS stores a uuid: a fast path for the package list, which shows thousands.
STORED_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# The two spellings a client may send: hex, or dashed 8-4-4-4-12 (either case).
CLIENT_UUID = re.compile(
    r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)


def public_uuid(value: str) -> str:
    """`value` as the admin API shows it: 32 lowercase hex digits.

    A value that is not a uuid (a peer may name a version otherwise) is shown
    as it is.
    """
    if STORED_UUID.fullmatch(value) is not None:
        return value.replace("-", "")
    try:
        return uuid.UUID(value).hex
    except ValueError:
        return value


def public_uuid_or_none(value: str | None) -> str | None:
    return None if value is None else public_uuid(value)


def stored_spellings(value: str) -> tuple[str, ...]:
    """The spellings under which the uuid a client sent may be stored; () if it is not one."""
    if CLIENT_UUID.fullmatch(value) is None:
        return ()
    parsed = uuid.UUID(value)
    return (str(parsed), parsed.hex)
