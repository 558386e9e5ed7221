"""The OpenAPI schema: complete, stable operation ids, documented errors, examples."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from ods.app import create_app
from ods.core.config import load_settings
from tests.helpers.api import TEST_DATABASE_KEY

ERROR_BODY = "#/components/schemas/ErrorBody"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture
def unstarted_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """An app that is never started: its schema needs no database."""
    monkeypatch.delenv("ODS_CONF", raising=False)
    return create_app(load_settings(data_dir=tmp_path, database_key=TEST_DATABASE_KEY))


@pytest.fixture
def built(unstarted_app: FastAPI) -> tuple[dict[str, Any], list[str]]:
    """The schema of a fresh app, and the warnings FastAPI gave while building it."""
    application = unstarted_app
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schema = application.openapi()
    return schema, [str(warning.message) for warning in caught]


@pytest.fixture
def schema(built: tuple[dict[str, Any], list[str]]) -> dict[str, Any]:
    return built[0]


def operations(schema: dict[str, Any], prefix: str = "/") -> Iterator[Operation]:
    for path, item in schema["paths"].items():
        if path.startswith(prefix):
            for method, operation in item.items():
                if method in METHODS:
                    yield method.upper(), path, operation


def component(schema: dict[str, Any], ref: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return found


def has_example(schema: dict[str, Any], media: dict[str, Any]) -> bool:
    if media.get("example") is not None or media.get("examples"):
        return True
    ref = media.get("schema", {}).get("$ref")
    if ref is None:
        return False
    model = component(schema, ref)
    return bool(model.get("examples") or model.get("example") is not None)


async def test_openapi_json_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["info"]["title"] == "ODS admin API"
    assert "/api/admin/about" in body["paths"]


def test_every_route_is_in_the_schema(unstarted_app: FastAPI, schema: dict[str, Any]) -> None:
    routes = {
        (method, route.path)
        for route in iter_route_contexts(unstarted_app.routes)
        if isinstance(route.original_route, APIRoute)
        and route.path
        and route.original_route.include_in_schema
        for method in route.methods or ()
    }
    documented = {(method, path) for method, path, _ in operations(schema)}
    assert routes
    assert routes == documented


def test_operation_ids_are_unique(built: tuple[dict[str, Any], list[str]]) -> None:
    schema, caught = built
    ids = Counter(operation.get("operationId") for _, _, operation in operations(schema))
    assert None not in ids
    assert [name for name, count in ids.items() if count > 1] == []
    assert [message for message in caught if "Operation ID" in message] == []


def test_the_compatible_operations_keep_their_ids(schema: dict[str, Any]) -> None:
    ids = {(method, path): op["operationId"] for method, path, op in operations(schema)}
    assert ids[("POST", "/api/auth/login")] == "login"
    assert ids[("POST", "/api/auth/password")] == "change_password"
    assert ids[("GET", "/api/admin/about")] == "get_about"
    assert ids[("POST", "/api/admin/about/update")] == "update_about"
    assert ids[("GET", "/api/admin/system")] == "get_system"
    assert ids[("GET", "/api/admin/users")] == "list_users"


def test_every_admin_operation_documents_its_errors(schema: dict[str, Any]) -> None:
    admin = list(operations(schema, "/api/admin"))
    assert admin
    for method, path, operation in admin:
        where = f"{method} {path}"
        responses = operation["responses"]
        expected = {"401", "403"}
        if operation.get("parameters") or operation.get("requestBody"):
            expected.add("422")
        assert expected <= set(responses), where
        for status in expected:
            ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
            assert ref == ERROR_BODY, f"{where} {status}"


def test_every_documented_error_uses_the_error_body(schema: dict[str, Any]) -> None:
    for method, path, operation in operations(schema, "/api/"):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                ref = response.get("content", {}).get("application/json", {}).get("schema", {})
                assert ref.get("$ref") == ERROR_BODY, f"{method} {path} {status}"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/api/admin/users", "409"),
        ("PATCH", "/api/admin/users/{user_id}", "409"),
        ("DELETE", "/api/admin/users/{user_id}", "409"),
        ("POST", "/api/auth/login", "429"),
        ("POST", "/api/admin/about/update", "400"),
    ],
)
def test_specific_errors_are_documented(
    schema: dict[str, Any], method: str, path: str, status: str
) -> None:
    response = schema["paths"][path][method.lower()]["responses"][status]
    assert response["content"]["application/json"]["schema"]["$ref"] == ERROR_BODY


def test_the_error_body_schema(schema: dict[str, Any]) -> None:
    body = component(schema, ERROR_BODY)
    assert set(body["properties"]) == {"error", "message", "details"}
    assert sorted(body["required"]) == ["error", "message"]
    assert body["examples"]


def test_every_request_and_response_model_has_an_example(schema: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in operations(schema):
        for content_type, media in operation.get("requestBody", {}).get("content", {}).items():
            if not has_example(schema, media):
                missing.append(f"{method} {path} request {content_type}")
        for status, response in operation["responses"].items():
            if not status.startswith("2"):
                continue
            media = response.get("content", {}).get("application/json")
            if media and media.get("schema") and not has_example(schema, media):
                missing.append(f"{method} {path} {status}")
    assert not missing, "no example: " + ", ".join(missing)


def test_every_operation_is_described(schema: dict[str, Any]) -> None:
    for method, path, operation in operations(schema):
        assert operation.get("summary"), f"{method} {path}"
        assert operation.get("description"), f"{method} {path}"


def test_admin_operations_ask_for_a_bearer_token(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    bearer = [name for name, scheme in schemes.items() if scheme.get("scheme") == "bearer"]
    assert bearer
    for method, path, operation in operations(schema, "/api/admin"):
        names = {name for requirement in operation.get("security", []) for name in requirement}
        assert names & set(bearer), f"{method} {path}"
