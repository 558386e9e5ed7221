"""Every example in the OpenAPI schema validates against the schema it illustrates.

Generated clients and fuzzers take the examples at their word; an example that
its own schema refuses teaches them a shape the server never sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from ods.app import create_app
from ods.core.config import load_settings
from tests.helpers.api import TEST_DATABASE_KEY

Example = tuple[str, dict[str, Any], Any]


def examples_of(where: str, holder: dict[str, Any], schema: dict[str, Any]) -> Iterator[Example]:
    """The examples a schema, parameter or media type holds, each with the schema it shows."""
    if "example" in holder:
        yield where, schema, holder["example"]
    for index, example in enumerate(holder.get("examples") or ()):
        if isinstance(holder["examples"], dict):
            yield f"{where} examples[{example}]", schema, holder["examples"][example]["value"]
        else:
            yield f"{where} examples[{index}]", schema, example


def schema_examples(where: str, schema: Any) -> Iterator[Example]:
    """The examples in a schema and every schema nested in it."""
    if isinstance(schema, dict):
        if "type" in schema or "$ref" in schema or "anyOf" in schema or "properties" in schema:
            yield from examples_of(where, schema, schema)
        for key, value in schema.items():
            if key not in ("example", "examples"):
                yield from schema_examples(f"{where}.{key}", value)
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from schema_examples(f"{where}[{index}]", value)


def all_examples(openapi: dict[str, Any]) -> Iterator[Example]:
    for name, schema in openapi["components"]["schemas"].items():
        yield from schema_examples(name, schema)
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", ()):
                named = f"{where} parameter {parameter['name']}"
                yield from examples_of(named, parameter, parameter["schema"])
                yield from schema_examples(named, parameter["schema"])
            body = operation.get("requestBody", {}).get("content", {})
            responses = [
                (f"{where} {status}", response.get("content", {}))
                for status, response in operation["responses"].items()
            ]
            for label, content in [(f"{where} body", body), *responses]:
                for media_type, media in content.items():
                    shown = media.get("schema", {})
                    yield from examples_of(f"{label} {media_type}", media, shown)
                    yield from schema_examples(f"{label} {media_type}", shown)


def openapi_document(tmp_path: Path) -> dict[str, Any]:
    settings = load_settings(data_dir=tmp_path, database_key=TEST_DATABASE_KEY)
    document: dict[str, Any] = create_app(settings).openapi()
    return document


def test_every_example_validates_against_its_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ODS_CONF", raising=False)
    openapi = openapi_document(tmp_path)
    found = list(all_examples(openapi))
    assert len(found) > 40, "the walk found too few examples to be looking in the right places"
    failures = []
    for where, schema, example in found:
        if "format" in str(schema) and "binary" in str(schema):
            continue  # a file part's example is its name, not its bytes
        rooted = {**schema, "components": openapi["components"]}
        validator = jsonschema_rs.validator_for(rooted)
        errors = [error.message for error in validator.iter_errors(example)]
        if errors:
            failures.append(f"{where}: {errors[0]}")
    assert not failures, "\n".join(failures)
