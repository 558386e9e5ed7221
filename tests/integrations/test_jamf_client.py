"""The Jamf Pro client against the stand-in: what the stand-in refuses (as Jamf Pro does),
and answers the client must not trust."""

from __future__ import annotations

import json

import httpx
import pytest

from ods.integrations.jamf.client import ANSWER_CAP, JamfClient, JamfError, record_body, rsql_equals
from tests.helpers.jamf_pro import JamfPro, running_jamf_pro

SHA512 = "ab" * 64


async def token(server: JamfPro) -> str:
    async with httpx.AsyncClient(base_url=server.url) as plain:
        answer = await plain.post(
            "/api/oauth/token",
            data={
                "client_id": server.client_id,
                "client_secret": server.client_secret,
                "grant_type": "client_credentials",
            },
        )
    assert answer.status_code == 200, answer.text
    value: str = answer.json()["access_token"]
    return value


async def test_the_stand_in_refuses_what_jamf_pro_refuses() -> None:
    with running_jamf_pro() as server:
        good = record_body("Tool.pkg", "-1", SHA512)
        async with httpx.AsyncClient(base_url=server.url) as plain:
            assert (await plain.post("/api/v1/packages", json=good)).status_code == 401
            bearer = {"Authorization": f"Bearer {await token(server)}"}
            missing = {k: v for k, v in good.items() if k != "suppressEula"}
            wrong_type = good | {"priority": "10"}
            wrong_bool = good | {"osInstall": 0}
            for body in (missing, wrong_type, wrong_bool, good | {"hashType": "SHA_1"}):
                answer = await plain.post("/api/v1/packages", json=body, headers=bearer)
                assert answer.status_code == 400, body
                assert answer.json()["errors"][0]["code"] == "INVALID_FIELD"
            as_form = await plain.post("/api/v1/packages", content=json.dumps(good), headers=bearer)
            assert as_form.status_code == 415
            form_token = await plain.post(
                "/api/oauth/token",
                json={"client_id": server.client_id, "client_secret": server.client_secret},
            )
            assert form_token.status_code == 400
            created = await plain.post("/api/v1/packages", json=good, headers=bearer)
            assert created.status_code == 201, created.text
            again = await plain.post("/api/v1/packages", json=good, headers=bearer)
            assert again.status_code == 409
            unknown = await plain.put("/api/v1/packages/999", json=good, headers=bearer)
            assert unknown.status_code == 404
            server.expire_tokens()
            expired = await plain.get("/api/v1/packages", headers=bearer)
            assert expired.status_code == 401


def test_rsql_values_are_quoted_and_escaped() -> None:
    assert rsql_equals("fileName", "A.pkg") == 'fileName=="A.pkg"'
    assert rsql_equals("fileName", 'a"b\\c;d,e.pkg') == 'fileName=="a\\"b\\\\c;d,e.pkg"'


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ((200, b"not json", "text/plain"), "not what its API describes"),
        ((200, b'{"access_token": "", "expires_in": 60}', "application/json"), "not what"),
        ((200, b'{"access_token": "t", "expires_in": -5}', "application/json"), "not what"),
        ((200, b"x" * (ANSWER_CAP + 10), "application/json"), "too long"),
        ((302, b"", "text/plain"), "redirect, not followed"),
    ],
)
async def test_hostile_token_answers_are_refused(
    answer: tuple[int, bytes, str], words: str
) -> None:
    with running_jamf_pro() as server:
        server.forced.append(answer)
        async with JamfClient(server.url, server.client_id, server.client_secret, timeout=5) as c:
            with pytest.raises(JamfError, match=words):
                await c.new_token()


async def test_a_hostile_record_list_is_refused() -> None:
    with running_jamf_pro() as server:
        async with JamfClient(server.url, server.client_id, server.client_secret, timeout=5) as c:
            await c.new_token()
            server.forced.append(
                (200, b'{"totalCount": 1, "results": [{"id": "../1"}]}', "application/json")
            )
            with pytest.raises(JamfError, match="not what its API describes"):
                await c.find_package("Tool.pkg")
            assert await c.find_package("Tool.pkg") is None
