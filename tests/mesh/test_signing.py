"""Signed peer requests: every tampered part is refused with its reason."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ods.mesh.protocol import signing
from ods.mesh.protocol.sealing import SealRejected, seal, unseal
from ods.server.identity import new_key

SECRET = b"s" * 32
OTHER_SECRET = b"o" * 32
A, B = "a" * 32, "b" * 32
NOW = 1_800_000_000.0


def signed(**overrides: object) -> tuple[dict[str, str], dict[str, object]]:
    request: dict[str, object] = {
        "method": "POST",
        "target": "/api/ods/notify?x=1",
        "body": b'{"uuid": "u"}',
        "sender": A,
        "receiver": B,
    }
    headers = signing.sign(SECRET, now=NOW, **request)  # type: ignore[arg-type]
    request.update(overrides)
    return headers, request


def verify(
    headers: dict[str, str], request: dict[str, object], secret: bytes = SECRET, now: float = NOW
) -> signing.SignedRequest:
    parsed, claimed = signing.read_signed(
        headers,
        method=str(request["method"]),
        target=str(request["target"]),
        body=request["body"],  # type: ignore[arg-type]
    )
    signing.check_signature(parsed, claimed, secret, own_iss=B, now=now)
    return parsed


def test_a_good_request_verifies() -> None:
    headers, request = signed()
    parsed = verify(headers, request)
    assert parsed.sender == A
    assert parsed.receiver == B
    assert len(parsed.nonce) == 32


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"method": "PUT"}, "signature does not match"),
        ({"target": "/api/ods/notify?x=2"}, "signature does not match"),
        ({"target": "/api/ods/other?x=1"}, "signature does not match"),
        ({"body": b'{"uuid": "v"}'}, "body does not match"),
    ],
)
def test_a_changed_request_is_refused(change: dict[str, object], reason: str) -> None:
    headers, request = signed(**change)
    with pytest.raises(signing.SignatureRejected, match=reason):
        verify(headers, request)


def test_a_forged_digest_header_is_refused() -> None:
    headers, request = signed(body=b"other")
    headers[signing.CONTENT_SHA256] = signing.body_digest(b"other")
    with pytest.raises(signing.SignatureRejected, match="signature does not match"):
        verify(headers, request)


def test_another_links_secret_does_not_verify() -> None:
    headers, request = signed()
    with pytest.raises(signing.SignatureRejected, match="signature does not match"):
        verify(headers, request, secret=OTHER_SECRET)


def test_a_sender_posing_as_another_is_refused() -> None:
    headers, request = signed()
    headers[signing.SENDER] = "c" * 32
    with pytest.raises(signing.SignatureRejected, match="signature does not match"):
        verify(headers, request)


def test_a_request_for_another_server_is_refused() -> None:
    headers = signing.sign(
        SECRET, method="GET", target="/", body=b"", sender=A, receiver="c" * 32, now=NOW
    )
    with pytest.raises(signing.SignatureRejected, match="addressed to another server"):
        verify(headers, {"method": "GET", "target": "/", "body": b""})


@pytest.mark.parametrize(("offset", "word"), [(-500, "old"), (500, "future")])
def test_stale_and_future_timestamps_are_refused(offset: float, word: str) -> None:
    headers, request = signed()
    with pytest.raises(signing.SignatureRejected, match=word):
        verify(headers, request, now=NOW - offset)


@pytest.mark.parametrize("header", [signing.NONCE, signing.SIGNATURE, signing.TIMESTAMP])
def test_missing_headers_are_named(header: str) -> None:
    headers, request = signed()
    del headers[header]
    with pytest.raises(signing.SignatureRejected, match=f"missing header {header}"):
        verify(headers, request)


def test_signed_request_fields_all_count() -> None:
    base = signing.SignedRequest("GET", "/", "d", A, B, 1, "n" * 16)
    signatures = {base.signature(SECRET)}
    for field in dataclasses.fields(base):
        value = getattr(base, field.name)
        changes: dict[str, Any] = {field.name: value + 1 if isinstance(value, int) else value + "x"}
        changed = dataclasses.replace(base, **changes)
        signatures.add(changed.signature(SECRET))
    assert len(signatures) == len(dataclasses.fields(base)) + 1


def test_sealed_secret_opens_only_with_the_right_key_and_ids() -> None:
    key, other_key = new_key(), new_key()
    token = seal(SECRET, key, sender=A, receiver=B)
    assert unseal(token, key, sender=A, receiver=B) == SECRET
    with pytest.raises(SealRejected):
        unseal(token, other_key, sender=A, receiver=B)
    with pytest.raises(SealRejected):
        unseal(token, key, sender="c" * 32, receiver=B)
    with pytest.raises(SealRejected):
        seal(SECRET, "not base64!", sender=A, receiver=B)
