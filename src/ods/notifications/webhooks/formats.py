"""What a delivery posts, in each format: `ods` (signed JSON), `slack` and `teams`.

`ods` is `{"id", "event", "created", "server": {"iss", "name", "url"}, "data"}`
with `X-ODS-Event`, `X-ODS-Delivery` and, with a secret, `X-ODS-Signature-256`.
`slack` is what Slack's incoming webhooks take (`{"text": ...}` in mrkdwn);
`teams` an Adaptive Card as Teams' Workflows ("When a Teams webhook request is
received") take it. Both are one readable line with a link to the console.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import ods
from ods.notifications.webhooks.signing import HEADER, signature

Format = Literal["ods", "slack", "teams"]
FORMATS: tuple[Format, ...] = ("ods", "slack", "teams")


@dataclass(frozen=True)
class ServerInfo:
    iss: str
    name: str
    url: str

    @property
    def console(self) -> str:
        return self.url.rstrip("/") + "/" if self.url else ""

    @property
    def label(self) -> str:
        return self.name or self.url or "ODS"


@dataclass(frozen=True)
class Outgoing:
    """One delivery's event, as stored with the delivery."""

    delivery_id: int
    kind: str
    created: str
    message: str
    data: dict[str, Any]


def ods_body(item: Outgoing, server: ServerInfo) -> dict[str, Any]:
    return {
        "id": item.delivery_id,
        "event": item.kind,
        "created": item.created,
        "server": {"iss": server.iss, "name": server.name, "url": server.url},
        "data": item.data,
    }


def slack_body(item: Outgoing, server: ServerInfo) -> dict[str, Any]:
    label = _slack_escape(server.label)
    where = f"<{server.console}|{label}>" if server.console else label
    return {"text": f"{where}: {_slack_escape(item.message)} (`{item.kind}`)"}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def teams_body(item: Outgoing, server: ServerInfo) -> dict[str, Any]:
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": f"{server.label}: {item.message} ({item.kind})",
                "wrap": True,
            }
        ],
    }
    if server.console:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open the ODS console", "url": server.console}
        ]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def render(
    fmt: str, item: Outgoing, server: ServerInfo, secret: str | None
) -> tuple[bytes, dict[str, str]]:
    """The raw body and the headers of a delivery."""
    headers = {"Content-Type": "application/json", "User-Agent": f"ODS/{ods.__version__}"}
    if fmt == "slack":
        document = slack_body(item, server)
    elif fmt == "teams":
        document = teams_body(item, server)
    else:
        document = ods_body(item, server)
        headers["X-ODS-Event"] = item.kind
        headers["X-ODS-Delivery"] = str(item.delivery_id)
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if fmt == "ods" and secret:
        headers[HEADER] = signature(secret, body)
    return body, headers
