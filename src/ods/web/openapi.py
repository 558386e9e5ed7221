"""Corrections to the OpenAPI schema FastAPI builds, so that it says exactly what the server does.

FastAPI writes the schema with `exclude_none`, which also strips the `null`
values out of the models' examples: a required nullable field (`status_reason`,
`last_error`, `expires`) vanished from every example, and the example no longer
matched its own schema. `restore_example_nulls` puts them back.

The downloads (`/share` and Jamf Pro's `/<share name>/Packages`) ask for a
login token only when `ODS_SHARE_REQUIRES_LOGIN` is on, and for Jamf Pro's
`?token=` only when `ODS_JAMF_JWT_PUBLIC_KEY` is set; the schema says so only
then, and otherwise lists neither the token nor the errors only that setting
brings (403 for the login, 401 for either).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

Schema = dict[str, Any]


def _resolve(schema: Schema, components: dict[str, Schema]) -> Schema:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _nullable(schema: Schema) -> bool:
    kinds = schema.get("type")
    if kinds == "null" or (isinstance(kinds, list) and "null" in kinds):
        return True
    return any(_nullable(option) for option in schema.get("anyOf", ()))


def _object_schema(schema: Schema, components: dict[str, Schema]) -> Schema | None:
    """The object schema a value of `schema` follows, looking through refs and `X | None`."""
    schema = _resolve(schema, components)
    if "properties" in schema:
        return schema
    options = [option for option in schema.get("anyOf", ()) if not _nullable(option)]
    if len(options) == 1:
        return _object_schema(options[0], components)
    return None


def _restore(example: Any, schema: Schema, components: dict[str, Schema]) -> None:
    """Put back the required `null` fields FastAPI dropped from one example, at every depth."""
    if isinstance(example, list):
        items: Schema = _resolve(schema, components).get("items", {})
        for item in example:
            _restore(item, items, components)
        return
    shape = _object_schema(schema, components) if isinstance(example, dict) else None
    if shape is None:
        return
    properties: dict[str, Schema] = shape["properties"]
    for name in shape.get("required", ()):
        if name not in example and name in properties and _nullable(properties[name]):
            example[name] = None
    for name, value in example.items():
        if name in properties:
            _restore(value, properties[name], components)


def restore_example_nulls(openapi: Schema) -> None:
    components: dict[str, Schema] = openapi.get("components", {}).get("schemas", {})
    for schema in components.values():
        for example in schema.get("examples", ()):
            _restore(example, schema, components)


DOWNLOADS_TAG = "downloads"  # the tag of the download operations (ods.packages.share)


def describe_share_access(openapi: Schema, requires_login: bool, jamf_token: bool) -> None:
    for item in openapi.get("paths", {}).values():
        for operation in item.values():
            if DOWNLOADS_TAG not in operation.get("tags", ()):
                continue
            responses = operation.get("responses", {})
            if not requires_login:
                operation.pop("security", None)
                responses.pop("403", None)
                if not jamf_token:
                    responses.pop("401", None)
            parameters = operation.get("parameters", [])
            for parameter in parameters:
                if parameter["in"] == "query" and parameter["name"] == "token":
                    parameter["required"] = True
            if not jamf_token:
                operation["parameters"] = [
                    parameter
                    for parameter in parameters
                    if not (parameter["in"] == "query" and parameter["name"] == "token")
                ]


def install_schema_corrections(
    app: FastAPI, *, share_requires_login: bool, jamf_token: bool = False
) -> None:
    """Wrap `app.openapi` so that every schema it serves has the corrections above."""
    build = app.openapi

    def openapi() -> Schema:
        schema = build()
        restore_example_nulls(schema)
        describe_share_access(schema, share_requires_login, jamf_token)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
