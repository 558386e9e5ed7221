"""ODS_JAMF_SHARE_NAME and ODS_JAMF_JWT_PUBLIC_KEY: checked at start, named when wrong,
and the schema says what the server asks for."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from fastapi.routing import iter_route_contexts

from ods.app import create_app
from ods.core.config import ConfigError, load_settings
from ods.core.jamf_settings import TAKEN_SEGMENTS
from tests.helpers.api import TEST_DATABASE_KEY
from tests.helpers.jamf_tokens import jamf_key, private_pem, public_pem


@pytest.fixture(autouse=True)
def no_conf_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ODS_CONF", raising=False)


def load(tmp_path: Path, **settings: Any) -> Any:
    return load_settings(data_dir=tmp_path, database_key=TEST_DATABASE_KEY, **settings)


def refusal(tmp_path: Path, **settings: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, **settings)
    return str(raised.value)


@pytest.mark.parametrize("name", ["CasperShare", "JamfShare", "dp-1", "Share_2.0", "x"])
def test_share_names_that_are_one_safe_segment_are_taken(tmp_path: Path, name: str) -> None:
    assert load(tmp_path, jamf_share_name=name).jamf_share_name == name


@pytest.mark.parametrize(
    "name",
    ["", "a/b", "..", ".hidden", "_ods_share", "-x", "Casper Share", "Caspér", "a?b", "x" * 65],
)
def test_share_names_that_are_no_plain_segment_are_refused(tmp_path: Path, name: str) -> None:
    message = refusal(tmp_path, jamf_share_name=name)
    assert message.startswith("ODS_JAMF_SHARE_NAME: ")
    assert "one path segment" in message


@pytest.mark.parametrize(
    "name",
    ["api", "share", "static", "ui", "docs", "openapi.json", "healthz", "readyz", "metrics", "API"],
)
def test_share_names_the_server_already_uses_are_refused(tmp_path: Path, name: str) -> None:
    message = refusal(tmp_path, jamf_share_name=name)
    assert message.startswith("ODS_JAMF_SHARE_NAME: ")
    assert "already uses" in message


def rsa_certificate_pem() -> str:
    key = jamf_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Jamf Pro JWT")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_the_public_key_is_taken_as_text_as_a_file_or_as_a_certificate(tmp_path: Path) -> None:
    pem = public_pem(jamf_key())
    assert load(tmp_path, jamf_jwt_public_key=pem).jamf_jwt_public_key == pem
    pkcs1 = (
        jamf_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        .decode()
    )
    assert load(tmp_path, jamf_jwt_public_key=pkcs1).jamf_jwt_public_key == pkcs1
    assert load(tmp_path, jamf_jwt_public_key=rsa_certificate_pem()).jamf_jwt_public_key
    path = tmp_path / "jamf-jwt.pub.pem"
    path.write_text(pem, encoding="ascii")
    assert load(tmp_path, jamf_jwt_public_key=str(path)).jamf_jwt_public_key == str(path)
    assert load(tmp_path, jamf_jwt_public_key="  ").jamf_jwt_public_key is None
    assert load(tmp_path).jamf_jwt_public_key is None


def test_keys_that_cannot_check_jamf_pros_tokens_are_refused(tmp_path: Path) -> None:
    # A key too small to trust, made so that the setting refuses it.
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    curve = ec.generate_private_key(ec.SECP256R1()).public_key()
    curve_pem = curve.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    binary = tmp_path / "binary.pem"
    binary.write_bytes(b"\xff\xfe not text")
    cases = {
        private_pem(jamf_key()): "private key",
        public_pem(small): "1024-bit",
        curve_pem: "must be an RSA key",
        "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n": "that can be read",
        str(tmp_path / "missing.pem"): "No such file",
        str(tmp_path): "readable file",
        str(binary): "not a PEM file",
    }
    for value, words in cases.items():
        message = refusal(tmp_path, jamf_jwt_public_key=value)
        assert message.startswith("ODS_JAMF_JWT_PUBLIC_KEY: "), message
        assert words in message, message
        assert "PRIVATE" not in message.split(":", 1)[1].split("(")[0]


def download_operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method} {path}": operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "downloads" in operation.get("tags", ())
    }


def test_the_schema_names_the_share_and_the_token_only_when_set(tmp_path: Path) -> None:
    plain = create_app(load(tmp_path / "plain", jamf_share_name="DP1")).openapi()
    assert "/DP1/Packages/{filename}" in plain["paths"]
    assert "/CasperShare/Packages/{filename}" not in plain["paths"]
    operations = download_operations(plain)
    assert len(operations) == 4
    for where, operation in operations.items():
        assert "token" not in {p["name"] for p in operation["parameters"]}, where
        assert "401" not in operation["responses"], where

    secured = create_app(
        load(tmp_path / "secured", jamf_jwt_public_key=public_pem(jamf_key()))
    ).openapi()
    operations = download_operations(secured)
    assert len(operations) == 4
    for where, operation in operations.items():
        token = next(p for p in operation["parameters"] if p["name"] == "token")
        assert token["in"] == "query", where
        assert token["required"] is True, where
        assert "401" in operation["responses"], where
        assert "403" not in operation["responses"], where
        assert "security" not in operation, where


def test_every_first_path_segment_of_the_server_is_kept_from_the_share_name(
    tmp_path: Path,
) -> None:
    """A route added later under a new first segment must be added to TAKEN_SEGMENTS."""
    app = create_app(load(tmp_path))
    segments = {
        (route.path or "").strip("/").split("/")[0].lower()
        for route in iter_route_contexts(app.routes)
    }
    assert "share" in segments
    assert "ui" in segments
    assert segments - {"", "caspershare"} <= TAKEN_SEGMENTS
