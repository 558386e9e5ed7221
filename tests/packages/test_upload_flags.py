"""`replace` is a boolean: `true` or `false`, in the form or the query; anything else is 422."""

from __future__ import annotations

import httpx
import pytest

from ods.core.config import Settings
from tests.helpers.api import assert_error
from tests.helpers.packages import assert_nothing_written, field_part, file_part, post_form


@pytest.mark.parametrize("value", ["banana", "yes", "1", "on", ""])
async def test_a_replace_field_that_is_not_a_boolean_is_refused(
    admin_client: httpx.AsyncClient, settings: Settings, value: str
) -> None:
    parts = [field_part("replace", value), file_part("Tool.pkg", b"tool")]
    body = assert_error(await post_form(admin_client, parts), 422, "invalid_input", "replace")
    assert body["details"][0]["field"] == "replace"
    await assert_nothing_written(admin_client, settings)


async def test_a_replace_query_that_is_not_a_boolean_is_refused(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    parts = [file_part("Tool.pkg", b"tool")]
    response = await post_form(admin_client, parts, params={"replace": "banana"})
    body = assert_error(response, 422, "invalid_input", "replace")
    assert body["details"][0]["field"] == "replace"
    await assert_nothing_written(admin_client, settings)


@pytest.mark.parametrize(("value", "where"), [("True", "form"), ("true", "query")])
async def test_replace_true_replaces(
    admin_client: httpx.AsyncClient, value: str, where: str
) -> None:
    first = await post_form(admin_client, [file_part("Tool.pkg", b"one")])
    assert first.status_code == 201, first.text
    parts = [file_part("Tool.pkg", b"two")]
    params = None
    if where == "form":
        parts.insert(0, field_part("replace", value))
    else:
        params = {"replace": value}
    second = await post_form(admin_client, parts, params=params)
    assert second.status_code == 201, second.text
    assert second.json()["replaced"] is True


async def test_replace_false_keeps_the_conflict(admin_client: httpx.AsyncClient) -> None:
    first = await post_form(admin_client, [file_part("Tool.pkg", b"one")])
    assert first.status_code == 201, first.text
    parts = [field_part("replace", "false"), file_part("Tool.pkg", b"two")]
    assert_error(await post_form(admin_client, parts), 409, "conflict")
