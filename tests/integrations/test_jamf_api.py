"""The Jamf Pro integration's admin API: who may use it, what it refuses, check, reconcile."""

from __future__ import annotations

import hashlib

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from ods.core.context import Context
from tests.helpers.accounts import USER_PASSWORD, add_user
from tests.helpers.api import anonymous, assert_error, bearer, login
from tests.helpers.jamf_pro import JamfPro
from tests.helpers.jamf_steps import configure, settings_body, until, until_records
from tests.helpers.packages import content_of, uploaded

PATH = "/api/admin/integrations/jamf"


async def test_only_admins_reach_it(
    app: FastAPI, admin_client: httpx.AsyncClient, jamf: JamfPro
) -> None:
    await add_user(admin_client, "packager", "package_manager")
    async with anonymous(app) as nobody:
        token = await login(nobody, "packager", USER_PASSWORD)
        for method, path in (
            ("GET", PATH),
            ("PUT", PATH),
            ("POST", f"{PATH}/check"),
            ("POST", f"{PATH}/reconcile"),
        ):
            body = settings_body(jamf) if method == "PUT" else None
            answer = await nobody.request(method, path, json=body)
            assert_error(answer, 401, "unauthorized", where=f"{method} {path}")
            answer = await nobody.request(method, path, json=body, headers=bearer(token))
            assert_error(answer, 403, "forbidden", where=f"{method} {path}")


async def test_bad_settings_are_refused_and_the_secret_is_never_shown(
    app: FastAPI, admin_client: httpx.AsyncClient, jamf: JamfPro
) -> None:
    shown = (await admin_client.get(PATH)).json()
    assert shown["configured"] is False
    assert_error(await admin_client.post(f"{PATH}/check"), 404, "not_found", "not configured")
    assert_error(await admin_client.post(f"{PATH}/reconcile"), 404, "not_found")
    no_secret = settings_body(jamf)
    del no_secret["client_secret"]
    assert_error(await admin_client.put(PATH, json=no_secret), 422, "invalid_input", "secret")
    for bad in (
        {"url": "ftp://jamf.example"},
        {"url": "https://jamf.example/some/path"},
        {"stages": ["Staging"]},
        {"enabled": "maybe"},
        {"client_id": ""},
        {"surprise": 1},
    ):
        answer = await admin_client.put(PATH, json=settings_body(jamf, **bad))
        assert_error(answer, 422, "invalid_input", where=str(bad))
    assert (await admin_client.get(PATH)).json()["configured"] is False

    saved = await configure(admin_client, jamf, stages=["Prod", "Test", "Prod"])
    assert saved["configured"] is True
    assert saved["secret_set"] is True
    assert saved["stages"] == ["Prod", "Test"]
    assert jamf.client_secret not in str(saved)
    # Left out later, the stored secret is kept.
    kept = settings_body(jamf, enabled=False)
    del kept["client_secret"]
    answer = await admin_client.put(PATH, json=kept)
    assert answer.status_code == 200, answer.text
    assert answer.json()["enabled"] is False
    assert (await admin_client.post(f"{PATH}/check")).json()["ok"] is True
    context: Context = app.state.context
    async with context.db.session() as session:
        stored = (await session.execute(text("SELECT * FROM jamf_settings"))).one()
    assert jamf.client_secret not in str(stored)


async def test_check_answers_what_jamf_pro_said(
    admin_client: httpx.AsyncClient, jamf: JamfPro
) -> None:
    await configure(admin_client, jamf)
    good = (await admin_client.post(f"{PATH}/check")).json()
    assert good["ok"] is True
    assert good["status"] == 200
    await configure(admin_client, jamf, client_secret="wrong")
    bad = (await admin_client.post(f"{PATH}/check")).json()
    assert bad == {"ok": False, "status": 401, "message": "Jamf Pro answered 401: invalid_client"}
    jamf.down = True
    await configure(admin_client, jamf)
    down = (await admin_client.post(f"{PATH}/check")).json()
    assert down["ok"] is False
    assert down["status"] == 503
    for url in ("http://127.0.0.1:9", "http://[::1", "http://xn--a.example"):
        await configure(admin_client, jamf, url=url)
        unreachable = (await admin_client.post(f"{PATH}/check")).json()
        assert unreachable["ok"] is False, url
        assert unreachable["status"] is None
        assert "cannot reach Jamf Pro" in unreachable["message"]


async def test_reconcile_finds_drift_and_repairs_it(
    admin_client: httpx.AsyncClient, jamf: JamfPro
) -> None:
    await configure(admin_client, jamf)
    names = ["It's (new), v2.pkg", "Stale.pkg", "Fine.pkg", "Orphan.pkg"]
    contents = {name: content_of(3000, seed=i) for i, name in enumerate(names)}
    for name in names:
        await uploaded(admin_client, name, contents[name])
    await until(lambda: len(jamf.packages) == 4)
    await until_records(admin_client, 4)
    # Drift: the integration is off while things change on both sides.
    await configure(admin_client, jamf, enabled=False)
    [stale] = jamf.by_filename("Stale.pkg")
    jamf.packages[stale["id"]]["hashValue"] = "0" * 128
    [gone] = jamf.by_filename("It's (new), v2.pkg")
    del jamf.packages[gone["id"]]
    [orphan] = jamf.by_filename("Orphan.pkg")
    assert (await admin_client.delete("/api/admin/packages/Orphan.pkg")).status_code in (200, 204)
    jamf.add_record("Someone-elses.pkg")

    seen = await admin_client.post(f"{PATH}/reconcile")
    assert seen.status_code == 200, seen.text
    assert seen.json() == {
        "missing": ["It's (new), v2.pkg"],
        "stale": ["Stale.pkg"],
        "orphaned": [{"filename": "Orphan.pkg", "jamf_id": orphan["id"]}],
        "repaired": False,
        "errors": [],
    }
    assert len(jamf.packages) == 4  # nothing changed yet

    fixed = await admin_client.post(f"{PATH}/reconcile", json={"repair": True})
    assert fixed.json()["repaired"] is True
    assert fixed.json()["errors"] == []
    for name in ("It's (new), v2.pkg", "Stale.pkg", "Fine.pkg"):
        [record] = jamf.by_filename(name)
        assert record["hashValue"] == hashlib.sha512(contents[name]).hexdigest()
    assert jamf.by_filename("Orphan.pkg") == []
    assert len(jamf.by_filename("Someone-elses.pkg")) == 1
    again = (await admin_client.post(f"{PATH}/reconcile")).json()
    assert (again["missing"], again["stale"], again["orphaned"]) == ([], [], [])
    assert_error(
        await admin_client.post(f"{PATH}/reconcile", json={"repair": "yes please"}),
        422,
        "invalid_input",
    )
