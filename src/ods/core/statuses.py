"""The status of a package version on one server."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PUBLISHING = "Publishing"
    DOWNLOADING = "Downloading"
    PUBLIC = "Public"
    FAILED = "Failed"
    WITHDRAWN = "Withdrawn"  # received from the mesh at a stage this server does not take


# The versions whose file is in the share dir (a withdrawn one's stays there for peers).
IN_SHARE = (Status.PUBLIC.value, Status.WITHDRAWN.value)
