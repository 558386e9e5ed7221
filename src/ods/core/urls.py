"""The one check of a server's URL: this server's own, and every peer's, wherever it comes from.

A peer URL is stored for every peer, prefixed to every path of the peer API,
recorded in events and shown in the console, so it must be an http or https
base URL and nothing else: a `javascript:` URL sent by a registering peer
once reached the console as a link. The check also normalises, so one
address is stored one way:

- scheme and host in lower case; no trailing slash;
- a user name or password is refused, not dropped: ODS signs its own
  requests, and whatever is in the URL is shown to every console user and
  kept in the event log;
- a `?query` or `#fragment` is refused, not dropped: ODS appends
  `/api/ods/…` to the URL, which would land inside the query;
- a path is kept (a server behind a proxy at `https://host/ods`), and so is
  an explicit port, as written.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal
from urllib.parse import urlsplit

MAX_LENGTH = 1024
LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")

Transport = Literal["https", "http"]


def server_url(value: str) -> str:
    """`value` as a normalised http(s) base URL, or ValueError saying what is wrong."""
    url = value.strip()
    if not url:
        raise ValueError("is empty: give an http:// or https:// URL")
    if len(url) > MAX_LENGTH:
        raise ValueError(f"is longer than {MAX_LENGTH} characters")
    if not url.isascii() or any(ch.isspace() or ord(ch) < 32 or ch == "\\" for ch in url):
        raise ValueError(
            "must not contain spaces, control characters, backslashes or non-ASCII letters "
            "(write an international host name in its xn-- form)"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # a [bracketed] host that is no IP address, or no closing ]
        raise ValueError(f"is not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not url[len(scheme) + 1 :].startswith("//"):
        raise ValueError("must be an http:// or https:// URL that peers can reach")
    if "?" in url or "#" in url:
        raise ValueError("must not have a ?query or #fragment: ODS appends /api/ods/… to it")
    if "@" in parts.netloc:
        raise ValueError("must not hold a user name or password")
    host = _host(parts.netloc, parts.hostname)
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("has a port that is not a number from 1 to 65535")
    authority = host if port is None else f"{host}:{port}"
    return f"{scheme}://{authority}{parts.path.rstrip('/')}"


def _host(netloc: str, hostname: str | None) -> str:
    """The host as it is written back: lower case, an IPv6 address in brackets."""
    if not hostname:
        raise ValueError("has no host")
    if netloc.startswith("["):
        try:
            ipaddress.IPv6Address(hostname)
        except ValueError:
            raise ValueError(f"has [{hostname}], which is not an IPv6 address") from None
        return f"[{hostname}]"
    labels = hostname.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()  # a fully qualified name's trailing dot
    if not all(LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"has {hostname!r}, which is not a host name or address")
    return hostname


def transport(url: str) -> Transport:
    """Whether a URL's link is encrypted (https) or not (http, or anything unchecked).

    Not parsed: a url stored before urls were checked may not parse, and the
    peer list must still show it.
    """
    return "https" if url.strip().lower().startswith("https://") else "http"
