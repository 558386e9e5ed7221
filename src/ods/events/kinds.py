"""The event catalogue as the API shows it: each kind, its description and its data fields."""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, WithJsonSchema
from pydantic_core import PydanticCustomError

from ods.events.base import EventData
from ods.events.catalogue import CATALOGUE, KINDS


class EventField(BaseModel):
    name: str
    type: str
    description: str


class EventKind(BaseModel):
    kind: str
    description: str
    fields: list[EventField]


def json_type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """A field's JSON Schema in a few words: `string`, `one of "api", "session"`, `… or null`."""
    if "$ref" in schema:
        return json_type(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(value) for value in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "anyOf" in schema:
        return " or ".join(json_type(option, defs) for option in schema["anyOf"])
    if schema.get("type") == "array":
        return "array of " + json_type(schema.get("items", {}), defs)
    if schema.get("type") == "object" and "properties" in schema:
        return "object (" + ", ".join(schema["properties"]) + ")"
    return str(schema.get("type", "any"))


def describe(event: type[EventData]) -> EventKind:
    schema = event.model_json_schema()
    defs = schema.get("$defs", {})
    return EventKind(
        kind=event.kind,
        description=event.description,
        fields=[
            EventField(
                name=name,
                type=json_type(schema["properties"][name], defs),
                description=field.description or "",
            )
            for name, field in event.model_fields.items()
        ],
    )


@cache
def catalogue() -> list[EventKind]:
    """Every kind, in the catalogue's order."""
    return [describe(event) for event in CATALOGUE]


class EventKindList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [catalogue()[0].model_dump()]}]}
    )

    items: list[EventKind]


def known_kind(kind: str) -> str:
    if kind not in KINDS:
        raise PydanticCustomError(
            "unknown_event_kind", "not an event kind; GET /api/admin/events/kinds lists them"
        )
    return kind


# A kind's name as a request sends it: one of the catalogue's, or a 422 saying where they are.
KindName = Annotated[
    str,
    AfterValidator(known_kind),
    WithJsonSchema({"type": "string", "enum": list(KINDS)}),
]
