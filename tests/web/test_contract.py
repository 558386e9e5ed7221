"""The schema says what the server does: answers without a body, who needs a token,
which errors the peer API gives, and the complete Allow header of a 405."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from ods.app import create_app
from ods.core.config import load_settings
from tests.helpers.api import TEST_DATABASE_KEY, assert_error


def openapi(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    app = create_app(load_settings(data_dir=tmp_path, database_key=TEST_DATABASE_KEY, **settings))
    schema: dict[str, Any] = app.openapi()
    return schema


@pytest.fixture(autouse=True)
def no_conf_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ODS_CONF", raising=False)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/admin/packages", "GET, POST"),
        ("OPTIONS", "/api/admin/packages/1", "DELETE, GET, PATCH"),
        ("OPTIONS", "/share/NoMAD.pkg", "GET, HEAD"),
        ("DELETE", "/api/admin/upload", "POST"),
    ],
)
async def test_a_405_lists_every_method_of_the_path(
    admin_client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await admin_client.request(method, path)
    body = assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == allow
    assert allow in body["message"]


def test_notify_and_forget_declare_no_body(tmp_path: Path) -> None:
    paths = openapi(tmp_path)["paths"]
    for path in ("/api/ods/notify", "/api/ods/forget"):
        accepted = paths[path]["post"]["responses"]["202"]
        assert "content" not in accepted, path


def test_share_asks_for_a_token_only_when_the_server_does(tmp_path: Path) -> None:
    open_share = openapi(tmp_path / "open")["paths"]["/share/{filename}"]
    closed_share = openapi(tmp_path / "closed", share_requires_login=True)["paths"][
        "/share/{filename}"
    ]
    for method in ("get", "head"):
        assert "security" not in open_share[method]
        assert not {"401", "403"} & set(open_share[method]["responses"])
        assert closed_share[method]["security"] == [{"HTTPBearer": []}]
        assert {"401", "403"} <= set(closed_share[method]["responses"])


def test_every_peer_operation_documents_its_refusals(tmp_path: Path) -> None:
    for path, item in openapi(tmp_path)["paths"].items():
        if path.startswith("/api/ods/"):
            for method, operation in item.items():
                assert {"400", "401"} <= set(operation["responses"]), f"{method} {path}"
    register = openapi(tmp_path / "again")["paths"]["/api/ods/register"]["post"]
    assert register["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PeerRegistration"
    }
    assert "409" in register["responses"]


def test_every_password_being_set_says_its_minimum_length(tmp_path: Path) -> None:
    schemas = openapi(tmp_path)["components"]["schemas"]
    for model, field in [
        ("PasswordChange", "new_password"),
        ("UserCreate", "password"),
        ("UserUpdate", "password"),
    ]:
        shown = schemas[model]["properties"][field]
        strings = [shown, *shown.get("anyOf", ())]
        lengths = [option.get("minLength") for option in strings if option.get("type") == "string"]
        assert lengths == [8], f"{model}.{field}: {shown}"


def test_the_upload_schema_types_replace_as_a_boolean(tmp_path: Path) -> None:
    upload = openapi(tmp_path)["paths"]["/api/admin/upload"]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["replace"]["type"] == "boolean"
    query = next(p for p in upload["parameters"] if p["name"] == "replace")
    assert query["schema"]["type"] == "boolean"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/admin/users",
            {"username": "bob", "password": "a long test passphrase", "must_change_password": 0},
            "must_change_password",
        ),
        ("/api/admin/tokens", {"name": "ci", "expires_days": "365"}, "expires_days"),
        ("/api/admin/users", {"username": "bob", "password": 12345678901}, "password"),
    ],
)
async def test_a_json_value_of_another_type_is_refused_not_coerced(
    admin_client: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    response = await admin_client.post(path, json=body)
    details = assert_error(response, 422, "invalid_input")["details"]
    assert [detail["field"] for detail in details] == [field]


async def test_an_integer_written_as_a_whole_float_is_taken(
    admin_client: httpx.AsyncClient,
) -> None:
    # JSON Schema's integer includes 365.0; only text and booleans are refused.
    response = await admin_client.post(
        "/api/admin/tokens", json={"name": "ci", "expires_days": 365.0}
    )
    assert response.status_code == 201, response.text
