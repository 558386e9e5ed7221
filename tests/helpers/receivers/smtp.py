"""A real SMTP server on loopback (aiosmtpd) that records every mail it accepts.

Plain, STARTTLS or implicit TLS with a certificate from a CA made in the test; with or
without AUTH; it can refuse the first mails (451) to exercise retries.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.helpers.tls import ca_and_server_certificate


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Recorder:
    """The aiosmtpd handler: keeps accepted mails, refuses the first `refuse` DATA commands."""

    refuse: int = 0
    mails: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.refused < self.refuse:
                self.refused += 1
                return "451 4.3.0 try again later"
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self.mails.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


class SmtpReceiver:
    """Start with `start()`, stop with `stop()`; `mails` holds what arrived."""

    def __init__(
        self,
        directory: Path,
        *,
        security: str = "none",
        auth: tuple[str, str] | None = None,
        refuse: int = 0,
    ) -> None:
        self.security = security
        self.auth = auth
        self.recorder = Recorder(refuse=refuse)
        self.port = free_port()
        self.ca_file: Path | None = None
        kwargs: dict[str, Any] = {}
        ssl_context = None
        if security != "none":
            directory.mkdir(parents=True, exist_ok=True)
            self.ca_file, cert, key = ca_and_server_certificate(directory)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(cert), str(key))
            if security == "tls":
                ssl_context = context
            else:
                kwargs.update(tls_context=context, require_starttls=True)
        if auth is not None:
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=True,
                # aiosmtpd counts only STARTTLS as TLS; implicit TLS is TLS too.
                auth_require_tls=security == "starttls",
            )
        self.controller = Controller(
            self.recorder,
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=ssl_context,
            server_hostname="localhost",
            **kwargs,
        )

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and self.auth is not None:
            given = (data.login.decode(), data.password.decode())
            return AuthResult(success=given == self.auth, handled=given == self.auth)
        return AuthResult(success=False, handled=False)

    @property
    def mails(self) -> list[EmailMessage]:
        with self.recorder.lock:
            return list(self.recorder.mails)

    def env(self, sender: str = "ods@example.org") -> dict[str, str]:
        """The ODS_SMTP_* settings that send to this receiver."""
        values = {
            "ODS_SMTP_HOST": "localhost",
            "ODS_SMTP_PORT": str(self.port),
            "ODS_SMTP_SECURITY": self.security,
            "ODS_SMTP_FROM": sender,
            "ODS_SMTP_TIMEOUT": "10",
        }
        if self.ca_file is not None:
            values["ODS_SMTP_CA_FILE"] = str(self.ca_file)
        if self.auth is not None:
            values["ODS_SMTP_USERNAME"], values["ODS_SMTP_PASSWORD"] = self.auth
        return values

    def wait_for(self, count: int, timeout: float = 30.0) -> list[EmailMessage]:
        """At least `count` mails, waiting up to `timeout` seconds for them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mails = self.mails
            if len(mails) >= count:
                return mails
            time.sleep(0.05)
        raise AssertionError(f"expected {count} mail(s), got {len(self.mails)}")

    async def arrived(self, count: int, seconds: float = 30.0) -> list[EmailMessage]:
        """`wait_for` for a test whose event loop runs the server that sends."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            mails = self.mails
            if len(mails) >= count:
                return mails
            await asyncio.sleep(0.1)
        raise AssertionError(f"expected {count} mail(s), got {len(self.mails)}")

    def start(self) -> SmtpReceiver:
        self.controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        """Stop listening (again: nothing)."""
        if getattr(self, "running", False):
            self.running = False
            self.controller.stop()
