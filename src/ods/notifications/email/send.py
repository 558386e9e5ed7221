"""Sending one mail over SMTP (aiosmtplib) as the ODS_SMTP_* settings say."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from ods.core.config import Settings
from ods.core.errors import Unavailable

DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}


class SmtpNotConfigured(Unavailable):
    """Mail cannot be sent: ODS_SMTP_HOST or ODS_SMTP_FROM is not set."""

    code = "smtp_not_configured"


class SendFailed(Exception):
    """The SMTP server could not be reached or refused the mail; the message says why."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    sender: str
    ca_file: Path | None
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        """The SMTP settings, or SmtpNotConfigured naming what is missing."""
        missing = [
            name
            for name, value in (
                ("ODS_SMTP_HOST", settings.smtp_host),
                ("ODS_SMTP_FROM", settings.smtp_from),
            )
            if not value
        ]
        if missing:
            raise SmtpNotConfigured(
                "email is not configured: set " + " and ".join(missing) + " (docs/configuration.md)"
            )
        assert settings.smtp_host is not None
        assert settings.smtp_from is not None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port or DEFAULT_PORTS[settings.smtp_security],
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
            sender=settings.smtp_from,
            ca_file=settings.smtp_ca_file,
            timeout=float(settings.smtp_timeout),
        )

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file is not None:
            context.load_verify_locations(cafile=str(self.ca_file))
        return context


def configured(settings: Settings) -> bool:
    return bool(settings.smtp_host and settings.smtp_from)


async def send(config: SmtpConfig, message: EmailMessage) -> None:
    """Send `message`; SendFailed with a one-line reason when it does not go."""
    secure = config.security != "none"
    try:
        await aiosmtplib.send(
            message,
            hostname=config.host,
            port=config.port,
            username=config.username or None,
            password=config.password if config.username else None,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            tls_context=config.tls_context() if secure else None,
            timeout=config.timeout,
        )
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError) as exc:
        raise SendFailed(f"cannot reach {config.host}:{config.port}: {exc}") from exc
    except aiosmtplib.SMTPException as exc:
        raise SendFailed(f"{type(exc).__name__}: {exc}".strip()) from exc
    except (OSError, ssl.SSLError) as exc:
        raise SendFailed(f"cannot reach {config.host}:{config.port}: {exc}") from exc
