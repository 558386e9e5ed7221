"""Signed statements: what verifies, and every way a forged or altered one is refused."""

from __future__ import annotations

import base64
import json
import uuid as uuidlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ods.core.stages import Stage
from ods.trust.statements import (
    DeleteStatement,
    PackageStatement,
    SignedStatement,
    StageStatement,
    Untrusted,
    bound_uuid,
    chunk_list_digest,
    fingerprint,
    new_bound_uuid,
    open_statement,
    public_text,
    sign,
    statement_kind,
)

ORIGIN = "a" * 32


def package(**changes: object) -> PackageStatement:
    fields: dict[str, object] = {
        "origin": ORIGIN,
        "uuid": "28f7c0aa-8f1e-4c1e-9a57-2b1d5e9f7c11",
        "filename": "Tool.pkg",
        "file_size": 300000,
        "sha256": "1" * 64,
        "sha1": "2" * 40,
        "chunks_sha256": chunk_list_digest(["3" * 64]),
        "chunks_sha1": chunk_list_digest(["4" * 40]),
        "stage": Stage.PROD,
        "created_ts": 1510370154,
    }
    return PackageStatement.model_validate(fields | changes)


def test_a_signed_statement_opens_to_what_was_signed() -> None:
    key = Ed25519PrivateKey.generate()
    statement = package()
    opened = open_statement(sign(key, statement), PackageStatement)
    assert opened.statement == statement
    assert opened.key == public_text(key)
    assert opened.statement.signer == ORIGIN


def test_a_changed_payload_does_not_verify() -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign(key, package())
    payload = json.loads(base64.b64decode(signed.payload))
    payload["sha256"] = "f" * 64
    forged = signed.model_copy(
        update={"payload": base64.b64encode(json.dumps(payload).encode()).decode()}
    )
    with pytest.raises(Untrusted, match="does not verify"):
        open_statement(forged, PackageStatement)


def test_a_signature_by_another_key_does_not_verify_under_the_carried_key() -> None:
    signed = sign(Ed25519PrivateKey.generate(), package())
    other = public_text(Ed25519PrivateKey.generate())
    with pytest.raises(Untrusted, match="does not verify"):
        open_statement(signed.model_copy(update={"key": other}), PackageStatement)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("payload", "not base64!", "payload is not base64"),
        ("key", base64.b64encode(b"short").decode(), "key is not 32 bytes"),
        ("signature", base64.b64encode(b"x" * 10).decode(), "signature is not 64 bytes"),
    ],
)
def test_malformed_parts_are_refused(field: str, value: str, message: str) -> None:
    signed = sign(Ed25519PrivateKey.generate(), package())
    with pytest.raises(Untrusted, match=message):
        open_statement(signed.model_copy(update={field: value}), PackageStatement)


def test_a_statement_of_one_kind_does_not_pass_for_another() -> None:
    key = Ed25519PrivateKey.generate()
    change = StageStatement(signer_iss=ORIGIN, uuid="u-1", stage=Stage.DEV, changed_ms=1)
    signed = sign(key, change)
    assert statement_kind(signed) == "stage"
    with pytest.raises(Untrusted, match="not a valid DeleteStatement"):
        open_statement(signed, DeleteStatement)


def test_an_oversize_payload_is_refused_before_it_is_parsed() -> None:
    key = Ed25519PrivateKey.generate()
    payload = b'{"kind": "package", "pad": "' + b"x" * 5000 + b'"}'
    with pytest.raises(ValueError, match="at most"):
        SignedStatement(
            payload=base64.b64encode(payload).decode(),
            signature=base64.b64encode(key.sign(payload)).decode(),
            key=public_text(key),
        )


def test_the_chunk_list_digest_depends_on_order_and_content() -> None:
    first, second = "a" * 64, "b" * 64
    assert chunk_list_digest([first, second]) != chunk_list_digest([second, first])
    assert chunk_list_digest([first]) != chunk_list_digest([first, ""])
    assert chunk_list_digest([]) == chunk_list_digest(iter([]))


def test_fingerprints_are_short_and_differ_by_key() -> None:
    one = public_text(Ed25519PrivateKey.generate())
    two = public_text(Ed25519PrivateKey.generate())
    assert fingerprint(one) != fingerprint(two)
    assert len(fingerprint(one)) == 29


OTHER = "b" * 32


def signed_payload(key: Ed25519PrivateKey, fields: dict[str, object]) -> SignedStatement:
    """A statement signed as a hostile server would, with no check of what it says."""
    payload = json.dumps(package().model_dump(mode="json") | fields).encode()
    return SignedStatement(
        payload=base64.b64encode(payload).decode(),
        signature=base64.b64encode(key.sign(b"ods-statement-v1\n" + payload)).decode(),
        key=public_text(key),
    )


def test_a_new_uuid_is_its_origins_and_verifies_with_its_nonce() -> None:
    uuid, nonce = new_bound_uuid(ORIGIN)
    assert uuidlib.UUID(uuid).version == 8
    assert bound_uuid(ORIGIN, nonce) == uuid
    assert bound_uuid(OTHER, nonce) != uuid
    assert new_bound_uuid(ORIGIN)[0] != uuid
    key = Ed25519PrivateKey.generate()
    opened = open_statement(sign(key, package(uuid=uuid, uuid_nonce=nonce)), PackageStatement)
    assert (opened.statement.uuid, opened.statement.uuid_nonce) == (uuid, nonce)


@pytest.mark.parametrize("claim", ["without a nonce", "with the origin's nonce", "with its own"])
def test_another_origin_cannot_claim_a_bound_uuid(claim: str) -> None:
    """A server that signs a statement of its own for a uuid another origin made is refused,
    whatever nonce it shows: the uuid can only be its maker's."""
    uuid, nonce = new_bound_uuid(ORIGIN)
    nonces = {
        "without a nonce": None,
        "with the origin's nonce": nonce,
        "with its own": new_bound_uuid(OTHER)[1],
    }
    squatter = Ed25519PrivateKey.generate()
    signed = signed_payload(squatter, {"origin": OTHER, "uuid": uuid, "uuid_nonce": nonces[claim]})
    with pytest.raises(Untrusted) as refused:
        open_statement(signed, PackageStatement)
    if claim == "without a nonce":
        expected = (
            f"uuid {uuid} is bound to its origin, but the statement does not show it is {OTHER}'s"
        )
    else:
        expected = f"uuid {uuid} was not made by origin {OTHER}"
    assert str(refused.value) == f"the statement is not a valid PackageStatement: {expected}"


def test_the_same_uuid_in_its_32_digit_form_binds_too() -> None:
    uuid, nonce = new_bound_uuid(ORIGIN)
    statement = package(uuid=uuid.replace("-", ""), uuid_nonce=nonce)
    assert statement.uuid == uuid.replace("-", "")


def test_uuids_made_before_binding_are_taken_without_a_nonce_but_not_with_a_wrong_one() -> None:
    legacy = str(uuidlib.uuid4())
    assert package(uuid=legacy).uuid == legacy
    with pytest.raises(ValueError, match="was not made by origin"):
        package(uuid=legacy, uuid_nonce=new_bound_uuid(ORIGIN)[1])


def previous_version_payload(key: Ed25519PrivateKey) -> SignedStatement:
    """A statement as a server of the previous version signed it: every field, `null`s
    included, and no `sha512` key at all."""
    fields = package().model_dump(mode="json")
    del fields["sha512"]
    fields["replaces"] = None
    fields["uuid_nonce"] = None
    payload = json.dumps(fields).encode()
    return SignedStatement(
        payload=base64.b64encode(payload).decode(),
        signature=base64.b64encode(key.sign(b"ods-statement-v1\n" + payload)).decode(),
        key=public_text(key),
    )


def test_the_sha512_is_signed_and_a_statement_without_one_still_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    statement = package(sha512="5" * 128)
    signed = sign(key, statement)
    assert open_statement(signed, PackageStatement).statement.sha512 == "5" * 128
    payload = json.loads(base64.b64decode(signed.payload))
    payload["sha512"] = "6" * 128
    altered = signed.model_copy(
        update={"payload": base64.b64encode(json.dumps(payload).encode()).decode()}
    )
    with pytest.raises(Untrusted, match="does not verify"):
        open_statement(altered, PackageStatement)

    old = open_statement(previous_version_payload(key), PackageStatement)
    assert old.statement.sha512 is None
    # What this version signs without a SHA-512 leaves the key out, so that a server of
    # the previous version, which refuses fields it does not know, still reads it.
    assert "sha512" not in json.loads(base64.b64decode(sign(key, package()).payload))


def test_a_sha512_that_is_not_hex_of_the_right_length_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    for bad in ("5" * 127, "G" * 128, "5" * 64):
        with pytest.raises(Untrusted, match="not a valid PackageStatement"):
            open_statement(signed_payload(key, {"sha512": bad}), PackageStatement)
