"""Mails from events: a subject in words, plain text and HTML with everything escaped."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from ods.core.humanize import size_hr

# The package facts a mail shows, in this order, with their labels.
PACKAGE_FIELDS = (
    ("filename", "Package"),
    ("stage", "Stage"),
    ("status", "Status"),
    ("file_size", "Size"),
    ("sha256", "SHA-256"),
    ("peer", "From server"),
    ("previous_stage", "Previous stage"),
    ("reason", "Reason"),
)


@dataclass(frozen=True)
class MailEvent:
    """One event as a mail shows it."""

    kind: str
    created: dt.datetime
    message: str
    data: dict[str, Any] = field(default_factory=dict)


def in_words(kind: str) -> str:
    """`package.stage_changed` as `Package stage changed`."""
    return kind.replace(".", " ").replace("_", " ").capitalize()


def one_line(text: str, limit: int = 150) -> str:
    """Text for a header: no line breaks, never longer than `limit`."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def subject(server: str, events: Sequence[MailEvent]) -> str:
    if len(events) == 1:
        event = events[0]
        name = event.data.get("filename")
        what = in_words(event.kind) + (f": {name}" if name else "")
        return one_line(f"[{server}] {what}")
    kinds = sorted({in_words(event.kind).lower() for event in events})
    return one_line(f"[{server}] {len(events)} events: " + ", ".join(kinds))


def facts(event: MailEvent) -> list[tuple[str, str]]:
    shown: list[tuple[str, str]] = []
    for key, label in PACKAGE_FIELDS:
        value = event.data.get(key)
        if value is None or value == "":
            continue
        if key == "file_size" and isinstance(value, int):
            value = f"{size_hr(value)} ({value} bytes)"
        shown.append((label, str(value)))
    return shown


def plain_text(server: str, console_url: str, events: Sequence[MailEvent]) -> str:
    lines = [f"{server} reports {len(events)} event(s):" if len(events) > 1 else f"{server}:", ""]
    for event in events:
        lines.append(f"{in_words(event.kind)} at {event.created:%Y-%m-%d %H:%M:%S} UTC")
        lines.append(f"  {one_line(event.message, 500)}")
        lines.extend(f"  {label}: {one_line(value, 500)}" for label, value in facts(event))
        lines.append("")
    lines.append(f"Console: {console_url}")
    return "\n".join(lines) + "\n"


def html_text(server: str, console_url: str, events: Sequence[MailEvent]) -> str:
    esc = html.escape
    parts = [f"<html><body><h2>{esc(server)}</h2>"]
    for event in events:
        parts.append(
            f"<h3>{esc(in_words(event.kind))}</h3>"
            f"<p>{esc(event.message)}<br><small>{event.created:%Y-%m-%d %H:%M:%S} UTC</small></p>"
        )
        rows = "".join(
            f"<tr><th align='left'>{esc(label)}</th><td>{esc(value)}</td></tr>"
            for label, value in facts(event)
        )
        if rows:
            parts.append(f"<table>{rows}</table>")
    parts.append(f'<p><a href="{esc(console_url, quote=True)}">Open the console</a></p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def compose(
    *,
    sender: str,
    to: str,
    server: str,
    console_url: str,
    events: Sequence[MailEvent],
) -> EmailMessage:
    """One mail (plain text and HTML alternatives) about `events`, at least one."""
    if not events:
        raise ValueError("a mail needs at least one event")
    message = EmailMessage()
    message["Subject"] = subject(server, events)
    message["From"] = sender
    message["To"] = to
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(plain_text(server, console_url, events))
    message.add_alternative(html_text(server, console_url, events), subtype="html")
    return message
