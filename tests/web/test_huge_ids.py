"""Ids and paging values past what a database stores: 404 and 422, never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.api import assert_error

HUGE = str(2**63)
HUGER = "9" * 40


@pytest.mark.parametrize("value", [HUGE, HUGER])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/admin/packages/{}"),
        ("PATCH", "/api/admin/packages/{}"),
        ("DELETE", "/api/admin/packages/{}"),
        ("GET", "/api/admin/users/{}"),
        ("PATCH", "/api/admin/users/{}"),
        ("DELETE", "/api/admin/users/{}"),
        ("DELETE", "/api/admin/tokens/{}"),
        ("DELETE", "/api/admin/registered_ods/{}"),
        ("GET", "/api/admin/webhooks/{}"),
        ("PATCH", "/api/admin/webhooks/{}"),
        ("DELETE", "/api/admin/webhooks/{}"),
        ("POST", "/api/admin/webhooks/{}/test"),
        ("GET", "/api/admin/webhooks/{}/deliveries"),
        ("POST", "/api/admin/webhooks/1/deliveries/{}/redeliver"),
        ("POST", "/api/admin/webhooks/{}/deliveries/1/redeliver"),
    ],
)
async def test_an_id_past_any_row_is_not_found(
    admin_client: httpx.AsyncClient, method: str, path: str, value: str
) -> None:
    body = {"stage": "Dev"} if "packages" in path and method == "PATCH" else None
    if "webhooks" in path and method == "PATCH":
        body = {"url": "https://hooks.example.org/ods"}
    if "users" in path and method == "PATCH":
        body = {"role": "read_only"}
    response = await admin_client.request(method, path.format(value), json=body)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    "query",
    [f"offset={HUGE}", f"offset={HUGER}", "offset=-1", "limit=0", f"limit={HUGE}"],
)
async def test_paging_values_out_of_range_are_refused(
    admin_client: httpx.AsyncClient, query: str
) -> None:
    response = await admin_client.get(f"/api/admin/packages?{query}")
    assert_error(response, 422, "invalid_input")


async def test_a_stream_from_an_id_past_any_row_is_refused(
    admin_client: httpx.AsyncClient,
) -> None:
    for params, headers in (({"after": HUGE}, {}), ({}, {"Last-Event-ID": HUGE})):
        response = await admin_client.get(
            "/api/admin/events/stream", params=params, headers=headers
        )
        assert_error(response, 422, "invalid_input")
    # Still usable afterwards: the connection and the server are fine.
    assert (await admin_client.get("/api/admin/packages")).status_code == 200
