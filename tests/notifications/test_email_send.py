"""Mails composed from events and sent to a real SMTP server: plain, STARTTLS, implicit TLS."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from ods.core.config import Settings
from ods.notifications.email.compose import MailEvent, compose
from ods.notifications.email.send import SendFailed, SmtpConfig, SmtpNotConfigured, send
from tests.helpers.receivers.smtp import SmtpReceiver

SHA = "ab" * 32
EVENT = MailEvent(
    kind="package.uploaded",
    created=dt.datetime(2026, 1, 2, 3, 4, 5),
    message="<b>evil</b>.pkg uploaded (Prod, 1.0 MB)",
    data={
        "uuid": "0" * 32,
        "filename": "<b>evil</b>.pkg",
        "stage": "Prod",
        "status": "Available",
        "file_size": 1048576,
        "sha256": SHA,
    },
)


def settings(env: dict[str, str]) -> Settings:
    return Settings(**env)  # type: ignore[arg-type]


def mail_for(config: SmtpConfig, to: str = "admin@example.org") -> EmailMessage:
    return compose(
        sender=config.sender,
        to=to,
        server="Main <site>",
        console_url="https://ods.example.org/",
        events=[EVENT],
    )


@pytest.fixture(params=["none", "starttls", "tls"])
def receiver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SmtpReceiver]:
    smtp = SmtpReceiver(tmp_path, security=request.param).start()
    yield smtp
    smtp.stop()


async def test_a_mail_reaches_the_server_with_text_and_escaped_html(
    receiver: SmtpReceiver,
) -> None:
    config = SmtpConfig.from_settings(settings(receiver.env()))
    await send(
        config,
        compose(
            sender=config.sender,
            to="admin@example.org",
            server="Main <site>",
            console_url="https://ods.example.org/",
            events=[EVENT],
        ),
    )
    [mail] = receiver.wait_for(1)
    assert mail["Subject"] == "[Main <site>] Package uploaded: <b>evil</b>.pkg"
    assert mail["To"] == "admin@example.org"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None
    assert html is not None
    plain = text.get_content()
    for shown in (
        "Main <site>",
        "<b>evil</b>.pkg",
        "Prod",
        "1.0 MB",
        SHA,
        "https://ods.example.org/",
    ):
        assert shown in plain
    markup = html.get_content()
    assert "<b>evil</b>" not in markup
    assert "&lt;b&gt;evil&lt;/b&gt;.pkg" in markup
    assert "Main &lt;site&gt;" in markup
    assert SHA in markup


# aiosmtpd warns when AUTH is offered outside STARTTLS: over a plain connection (the
# "none" case, the point of it) and over implicit TLS, which it does not count as TLS.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["none", "starttls", "tls"])
async def test_auth_is_used_when_a_username_is_set(tmp_path: Path, security: str) -> None:
    smtp = SmtpReceiver(tmp_path, security=security, auth=("ods", "s3cret-pass")).start()
    try:
        config = SmtpConfig.from_settings(settings(smtp.env()))
        await send(
            config,
            compose(
                sender=config.sender,
                to="a@example.org",
                server="S",
                console_url="http://x/",
                events=[EVENT],
            ),
        )
        assert len(smtp.wait_for(1)) == 1
        wrong = {**smtp.env(), "ODS_SMTP_PASSWORD": "wrong-password"}
        with pytest.raises(SendFailed, match="SMTPAuthenticationError"):
            await send(
                SmtpConfig.from_settings(settings(wrong)),
                compose(
                    sender=config.sender,
                    to="a@example.org",
                    server="S",
                    console_url="http://x/",
                    events=[EVENT],
                ),
            )
        without = {k: v for k, v in smtp.env().items() if not k.startswith("ODS_SMTP_USER")}
        with pytest.raises(SendFailed):
            await send(
                SmtpConfig.from_settings(settings(without)),
                compose(
                    sender=config.sender,
                    to="a@example.org",
                    server="S",
                    console_url="http://x/",
                    events=[EVENT],
                ),
            )
        assert len(smtp.mails) == 1
    finally:
        smtp.stop()


async def test_a_server_whose_certificate_is_not_trusted_is_refused(tmp_path: Path) -> None:
    smtp = SmtpReceiver(tmp_path, security="tls").start()
    try:
        env = {k: v for k, v in smtp.env().items() if k != "ODS_SMTP_CA_FILE"}
        config = SmtpConfig.from_settings(settings(env))
        message = mail_for(config)
        with pytest.raises(SendFailed, match="CERTIFICATE_VERIFY_FAILED"):
            await send(config, message)
        assert smtp.mails == []
    finally:
        smtp.stop()


async def test_a_refusal_and_an_unreachable_server_are_send_failures(tmp_path: Path) -> None:
    smtp = SmtpReceiver(tmp_path, refuse=1).start()
    config = SmtpConfig.from_settings(settings(smtp.env()))
    message = compose(
        sender=config.sender,
        to="a@example.org",
        server="S",
        console_url="http://x/",
        events=[EVENT],
    )
    with pytest.raises(SendFailed, match="451"):
        await send(config, message)
    await send(config, message)
    assert len(smtp.wait_for(1)) == 1
    smtp.stop()
    with pytest.raises(SendFailed, match="cannot reach"):
        await send(config, message)


def test_missing_settings_are_named() -> None:
    with pytest.raises(SmtpNotConfigured, match="ODS_SMTP_HOST and ODS_SMTP_FROM"):
        SmtpConfig.from_settings(settings({}))
    with pytest.raises(SmtpNotConfigured, match="ODS_SMTP_FROM"):
        SmtpConfig.from_settings(settings({"ODS_SMTP_HOST": "mail.example.org"}))
    config = SmtpConfig.from_settings(
        settings({"ODS_SMTP_HOST": "mail.example.org", "ODS_SMTP_FROM": "ods@example.org"})
    )
    assert (config.port, config.security) == (587, "starttls")


def test_a_digest_subject_counts_its_events() -> None:
    second = MailEvent(
        kind="package.deleted", created=EVENT.created, message="gone", data={"filename": "b.pkg"}
    )
    mail = compose(
        sender="o@example.org",
        to="a@example.org",
        server="S\r\nBcc: x@evil",
        console_url="http://x/",
        events=[EVENT, EVENT, second],
    )
    assert mail["Subject"] == "[S Bcc: x@evil] 3 events: package deleted, package uploaded"
    assert "\n" not in str(mail["Subject"])
