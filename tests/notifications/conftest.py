"""The app of the notification tests sends its mail to a real SMTP server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ods.core.config import Settings
from tests.helpers.receivers.smtp import SmtpReceiver


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver(tmp_path, security="starttls").start()
    yield receiver
    receiver.stop()


@pytest.fixture
def settings(settings: Settings, smtp: SmtpReceiver) -> Settings:
    env = smtp.env()
    return settings.model_copy(
        update={
            "smtp_host": env["ODS_SMTP_HOST"],
            "smtp_port": int(env["ODS_SMTP_PORT"]),
            "smtp_security": env["ODS_SMTP_SECURITY"],
            "smtp_from": env["ODS_SMTP_FROM"],
            "smtp_ca_file": Path(env["ODS_SMTP_CA_FILE"]),
            "smtp_timeout": 10,
        }
    )
