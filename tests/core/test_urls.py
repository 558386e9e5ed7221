"""The one check of a server's URL: what it stores, and what it refuses and why."""

from __future__ import annotations

import re

import pytest

from ods.core.urls import server_url, transport


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("http://192.168.99.100", "http://192.168.99.100"),
        ("  http://192.168.99.100/  ", "http://192.168.99.100"),
        ("HTTPS://ODS.Example.COM:8443/Ods/", "https://ods.example.com:8443/Ods"),
        ("http://[FD00::1]:8000/", "http://[fd00::1]:8000"),
        ("http://ods_2:8000", "http://ods_2:8000"),
        ("https://ods.example.com:", "https://ods.example.com"),
        ("https://ods.example.com.", "https://ods.example.com."),
    ],
)
def test_an_http_url_is_stored_normalised(sent: str, stored: str) -> None:
    assert server_url(sent) == stored


@pytest.mark.parametrize(
    ("sent", "why"),
    [
        ("javascript:alert(document.domain)//", "http:// or https://"),
        ("JavaScript://%0aalert(1)", "http:// or https://"),
        ("data:text/html,<script>alert(1)</script>", "http:// or https://"),
        ("ftp://192.168.99.100", "http:// or https://"),
        ("192.168.99.100", "http:// or https://"),
        ("http:ods.example.com", "http:// or https://"),
        ("", "empty"),
        ("   ", "empty"),
        ("http://", "no host"),
        ("http://:8000", "no host"),
        ("http://admin:secret@ods.example.com", "user name or password"),
        ("http://ods.example.com/?next=/", "query"),
        ("http://ods.example.com/#top", "fragment"),
        ("http://ods.example.com:0", "port"),
        ("http://ods.example.com:65536", "port"),
        ("http://ods.example.com:http", "port"),
        ("http://bad host/", "spaces"),
        ("http://ods.example.com\\@evil.example", "backslashes"),
        ("http://ods.example.com/\nSet-Cookie: x", "control characters"),
        ("http://ödsserver.example", "xn--"),
        ("http://-ods.example.com", "not a host name"),
        ("http://ods..example.com", "not a host name"),
        ("http://[not:an:address]", "not a URL"),
        ("http://[v1.fe]", "IPv6"),
        ("http://[::1", "not a URL"),
        ("http://" + "a" * 1020, "longer than 1024"),
    ],
)
def test_anything_else_is_refused_with_the_reason(sent: str, why: str) -> None:
    with pytest.raises(ValueError, match=f"(?i){re.escape(why)}"):
        server_url(sent)


def test_only_https_counts_as_encrypted() -> None:
    assert transport("https://ods.example.com") == "https"
    assert transport("HTTPS://ods.example.com") == "https"
    assert transport("http://ods.example.com") == "http"
    # A url stored before urls were checked is not encrypted either.
    assert transport("javascript:alert(1)//") == "http"
    assert transport("http://[::1") == "http"
