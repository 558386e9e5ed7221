"""The app of the Jamf Pro tests reads its event log often and retries quickly, and talks
to a stand-in Jamf Pro on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ods.core.config import Settings
from tests.helpers.jamf_pro import JamfPro, running_jamf_pro


@pytest.fixture
def jamf() -> Iterator[JamfPro]:
    with running_jamf_pro() as server:
        yield server


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"jamf_sync_seconds": 0.1, "jamf_retry_seconds": 0.05, "jamf_timeout": 5.0}
    )
