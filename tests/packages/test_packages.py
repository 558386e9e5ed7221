"""Packages through the admin API: upload, list, look up, change stage, replace, delete.

Uploads go through the hand-built multipart bodies of tests.helpers.packages.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import re
import unicodedata
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from ods.core.config import Settings
from tests.helpers.api import anonymous, assert_error
from tests.helpers.packages import (
    MIB,
    assert_nothing_written,
    content_of,
    field_part,
    file_part,
    post_form,
    shared_files,
    staged_files,
    upload,
    uploaded,
)

ISO_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")


async def test_upload_hashes_the_file_and_each_mebibyte(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    content = content_of(3 * MIB + 300_000)
    before = int(dt.datetime.now(dt.UTC).timestamp())
    response = await admin_client.post(
        "/api/admin/upload",
        files={"file": ("NoMAD.pkg", content, "application/octet-stream")},
        data={"stage": "Prod"},
    )
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["filename"] == "NoMAD.pkg"
    assert result["sha1"] == hashlib.sha1(content, usedforsecurity=False).hexdigest()
    assert result["sha256"] == hashlib.sha256(content).hexdigest()
    assert result["sha512"] == hashlib.sha512(content).hexdigest()
    assert result["file_size"] == len(content)
    assert result["stage"] == "Prod"
    assert result["status"] == "Public"
    assert result["replaced"] is False
    assert uuid.UUID(result["uuid"]).hex == result["uuid"]

    package = (await admin_client.get(f"/api/admin/packages/{result['id']}")).json()
    assert package["sha512"] == hashlib.sha512(content).hexdigest()
    listed = (await admin_client.get("/api/admin/packages")).json()["items"]
    assert [item["sha512"] for item in listed] == [package["sha512"]]
    assert package["file_size_hr"] == "3.3 MB"
    assert ISO_SECONDS.match(package["created"]), package["created"]
    created = dt.datetime.fromisoformat(package["created"]).replace(tzinfo=dt.UTC)
    assert package["created_ts"] == calendar.timegm(created.timetuple())
    assert before - 1 <= package["created_ts"] <= int(dt.datetime.now(dt.UTC).timestamp()) + 1
    expected_chunks = [
        {
            "index": index,
            "sha1": hashlib.sha1(content[start : start + MIB], usedforsecurity=False).hexdigest(),
            "sha256": hashlib.sha256(content[start : start + MIB]).hexdigest(),
        }
        for index, start in enumerate(range(0, len(content), MIB))
    ]
    assert len(expected_chunks) == 4
    assert package["chunks"] == expected_chunks
    assert (settings.share_dir / "NoMAD.pkg").read_bytes() == content
    assert staged_files(settings) == []


async def test_upload_of_exactly_one_chunk_and_of_an_empty_file(
    admin_client: httpx.AsyncClient,
) -> None:
    one = content_of(MIB, seed=1)
    result = await uploaded(admin_client, "one.pkg", one)
    package = (await admin_client.get(f"/api/admin/packages/{result['id']}")).json()
    assert [chunk["index"] for chunk in package["chunks"]] == [0]
    assert package["chunks"][0]["sha1"] == hashlib.sha1(one, usedforsecurity=False).hexdigest()
    assert package["file_size_hr"] == "1.0 MB"

    empty = await uploaded(admin_client, "empty.pkg", b"")
    assert empty["sha1"] == hashlib.sha1(b"", usedforsecurity=False).hexdigest()
    package = (await admin_client.get("/api/admin/packages/empty.pkg")).json()
    assert package["file_size"] == 0
    assert package["file_size_hr"] == "0 bytes"
    assert package["chunks"] == []


async def test_package_object_has_the_documented_fields(admin_client: httpx.AsyncClient) -> None:
    result = await uploaded(admin_client, "Fields.pkg", b"x" * 2000, stage="Test")
    items = (await admin_client.get("/api/admin/packages")).json()["items"]
    assert len(items) == 1
    package = items[0]
    documented = {
        "created",
        "created_ts",
        "file_size",
        "file_size_hr",
        "filename",
        "id",
        "sha1",
        "stage",
        "status",
        "uuid",
    }
    assert documented <= set(package)
    assert package["id"] == result["id"]
    assert package["uuid"] == result["uuid"]
    assert package["file_size_hr"] == "2.0 KB"
    assert package["stage"] == "Test"
    assert package["status"] == "Public"
    assert isinstance(package["created_ts"], int)


@pytest.mark.parametrize("path", ["/api/admin/upload", "/api/admin/packages"])
async def test_both_upload_paths_publish(
    admin_client: httpx.AsyncClient, settings: Settings, path: str
) -> None:
    content = content_of(5000, seed=2)
    response = await upload(admin_client, "Both.pkg", content, path=path)
    assert response.status_code == 201, response.text
    assert (settings.share_dir / "Both.pkg").read_bytes() == content


async def test_stage_defaults_to_prod(admin_client: httpx.AsyncClient) -> None:
    response = await upload(admin_client, "NoStage.pkg", b"no stage", stage=None)
    assert response.status_code == 201, response.text
    assert response.json()["stage"] == "Prod"
    assert (await admin_client.get("/api/admin/packages/NoStage.pkg")).json()["stage"] == "Prod"


@pytest.mark.parametrize("stage_first", [True, False])
async def test_stage_field_before_or_after_the_file(
    admin_client: httpx.AsyncClient, stage_first: bool
) -> None:
    stage = field_part("stage", "Test")
    file = file_part("Order.pkg", b"order matters not")
    parts = [stage, file] if stage_first else [file, stage]
    response = await post_form(admin_client, parts)
    assert response.status_code == 201, response.text
    assert response.json()["stage"] == "Test"
    package = (await admin_client.get("/api/admin/packages/Order.pkg")).json()
    assert package["stage"] == "Test"


async def test_stage_as_query_parameter(admin_client: httpx.AsyncClient) -> None:
    response = await post_form(
        admin_client, [file_part("Query.pkg", b"query stage")], params={"stage": "Dev"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["stage"] == "Dev"
    assert (await admin_client.get("/api/admin/packages/Query.pkg")).json()["stage"] == "Dev"


async def test_stage_field_is_case_insensitive(admin_client: httpx.AsyncClient) -> None:
    result = await uploaded(admin_client, "Lower.pkg", b"lower", stage="dev")
    assert result["stage"] == "Dev"


async def test_identical_reupload_is_idempotent(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    content = content_of(MIB + 10, seed=3)
    first = await uploaded(admin_client, "Same.pkg", content)
    second = await uploaded(admin_client, "Same.pkg", content)
    assert second["id"] == first["id"]
    assert second["uuid"] == first["uuid"]
    assert second["sha1"] == first["sha1"]
    assert second["replaced"] is False
    listing = (await admin_client.get("/api/admin/packages")).json()
    assert listing["total"] == 1
    assert shared_files(settings) == ["Same.pkg"]
    assert staged_files(settings) == []
    assert (settings.share_dir / "Same.pkg").read_bytes() == content


async def test_same_name_other_content_is_409_and_keeps_the_original(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    original = content_of(4000, seed=4)
    first = await uploaded(admin_client, "Clash.pkg", original)
    response = await upload(admin_client, "Clash.pkg", content_of(4000, seed=5))
    assert_error(response, 409, "conflict", "Clash.pkg", "replace=true")
    package = (await admin_client.get("/api/admin/packages/Clash.pkg")).json()
    assert package["sha1"] == first["sha1"]
    assert package["uuid"] == first["uuid"]
    assert (settings.share_dir / "Clash.pkg").read_bytes() == original
    await assert_nothing_written(admin_client, settings, shared=["Clash.pkg"])
    served = await admin_client.get("/share/Clash.pkg")
    assert served.content == original


@pytest.mark.parametrize("how", ["field", "query"])
async def test_replace_publishes_the_new_content(
    admin_client: httpx.AsyncClient, settings: Settings, how: str
) -> None:
    old = content_of(2 * MIB + 5, seed=6)
    new = content_of(MIB + 7, seed=7)
    first = await uploaded(admin_client, "Tool.pkg", old)
    if how == "field":
        response = await upload(admin_client, "Tool.pkg", new, replace=True)
    else:
        response = await post_form(
            admin_client,
            [field_part("stage", "Prod"), file_part("Tool.pkg", new)],
            params={"replace": "true"},
        )
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["replaced"] is True
    assert result["uuid"] != first["uuid"]
    assert result["sha1"] == hashlib.sha1(new, usedforsecurity=False).hexdigest()
    assert result["file_size"] == len(new)

    package = (await admin_client.get("/api/admin/packages/Tool.pkg")).json()
    assert package["uuid"] == result["uuid"]
    assert package["sha256"] == hashlib.sha256(new).hexdigest()
    assert [chunk["index"] for chunk in package["chunks"]] == [0, 1]
    assert package["chunks"][1]["sha1"] == (
        hashlib.sha1(new[MIB:], usedforsecurity=False).hexdigest()
    )
    served = await admin_client.get("/share/Tool.pkg")
    assert served.status_code == 200
    assert served.content == new
    assert served.headers["etag"] == f'"{result["sha1"]}"'
    await assert_nothing_written(admin_client, settings, shared=["Tool.pkg"])


async def test_replace_of_a_name_not_yet_uploaded_is_a_plain_upload(
    admin_client: httpx.AsyncClient,
) -> None:
    response = await upload(admin_client, "Fresh.pkg", b"fresh", replace=True)
    assert response.status_code == 201, response.text
    assert response.json()["replaced"] is False


async def test_list_filters_and_pages(admin_client: httpx.AsyncClient) -> None:
    stages = {"a_b.pkg": "Dev", "axb.pkg": "Test", "c.dmg": "Prod", "d.pkg": "Dev", "e.pkg": "Prod"}
    ids = {}
    for seed, (name, stage) in enumerate(stages.items()):
        ids[name] = (await uploaded(admin_client, name, content_of(100, seed), stage=stage))["id"]

    everything = (await admin_client.get("/api/admin/packages")).json()
    assert everything["total"] == 5
    assert [item["filename"] for item in everything["items"]] == list(stages)
    assert [item["id"] for item in everything["items"]] == sorted(ids.values())

    dev = (await admin_client.get("/api/admin/packages", params={"stage": "Dev"})).json()
    assert [item["filename"] for item in dev["items"]] == ["a_b.pkg", "d.pkg"]
    assert dev["total"] == 2

    public = (await admin_client.get("/api/admin/packages", params={"status": "Public"})).json()
    assert public["total"] == 5
    failed = (await admin_client.get("/api/admin/packages", params={"status": "Failed"})).json()
    assert failed == {"items": [], "total": 0}

    search = (await admin_client.get("/api/admin/packages", params={"search": "_"})).json()
    assert [item["filename"] for item in search["items"]] == ["a_b.pkg"]
    search = (await admin_client.get("/api/admin/packages", params={"search": ".pkg"})).json()
    assert search["total"] == 4

    page = (
        await admin_client.get("/api/admin/packages", params={"limit": "2", "offset": "1"})
    ).json()
    assert [item["filename"] for item in page["items"]] == ["axb.pkg", "c.dmg"]
    assert page["total"] == 5
    page = (await admin_client.get("/api/admin/packages", params={"offset": "4"})).json()
    assert [item["filename"] for item in page["items"]] == ["e.pkg"]
    assert page["total"] == 5
    beyond = (await admin_client.get("/api/admin/packages", params={"offset": "10"})).json()
    assert beyond == {"items": [], "total": 5}

    combined = (
        await admin_client.get(
            "/api/admin/packages", params={"stage": "Dev", "search": "d", "limit": "1"}
        )
    ).json()
    assert [item["filename"] for item in combined["items"]] == ["d.pkg"]
    assert combined["total"] == 1


async def test_the_list_shows_every_change_since_the_last_listing(
    admin_client: httpx.AsyncClient,
) -> None:
    first = await uploaded(admin_client, "kept.pkg", b"kept", stage="Dev")
    second = await uploaded(admin_client, "changed.pkg", b"changed", stage="Dev")
    before = (await admin_client.get("/api/admin/packages")).json()
    assert [item["stage"] for item in before["items"]] == ["Dev", "Dev"]

    promoted = await admin_client.patch(
        f"/api/admin/packages/{second['id']}", json={"stage": "Prod"}
    )
    assert promoted.status_code == 200, promoted.text
    # A filtered listing in between neither hides nor keeps anything from the full one.
    dev = (await admin_client.get("/api/admin/packages", params={"stage": "Dev"})).json()
    assert [item["filename"] for item in dev["items"]] == ["kept.pkg"]
    after = (await admin_client.get("/api/admin/packages")).json()
    assert [(item["filename"], item["stage"]) for item in after["items"]] == [
        ("kept.pkg", "Dev"),
        ("changed.pkg", "Prod"),
    ]
    assert after["items"][0] == before["items"][0]
    assert ISO_SECONDS.match(after["items"][1]["created"])

    deleted = await admin_client.delete(f"/api/admin/packages/{first['id']}")
    assert deleted.status_code == 204
    again = await uploaded(admin_client, "kept.pkg", b"kept again", stage="Test")
    last = (await admin_client.get("/api/admin/packages")).json()
    assert [(item["filename"], item["stage"], item["id"]) for item in last["items"]] == [
        ("changed.pkg", "Prod", second["id"]),
        ("kept.pkg", "Test", again["id"]),
    ]
    assert (
        last["items"][1]["sha1"] == hashlib.sha1(b"kept again", usedforsecurity=False).hexdigest()
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"stage": "Staging"}, "stage"),
        ({"status": "Gone"}, "status"),
        ({"limit": "many"}, "limit"),
    ],
)
async def test_list_refuses_bad_parameters(
    admin_client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await admin_client.get("/api/admin/packages", params=params)
    assert_error(response, 422, "invalid_input", field)
    assert response.json()["details"][0]["field"] == field


async def test_get_by_id_and_by_filename(admin_client: httpx.AsyncClient) -> None:
    content = content_of(1500, seed=8)
    result = await uploaded(admin_client, "Find Me 1.0.pkg", content)
    by_id = await admin_client.get(f"/api/admin/packages/{result['id']}")
    by_name = await admin_client.get("/api/admin/packages/Find%20Me%201.0.pkg")
    assert by_id.status_code == by_name.status_code == 200
    assert by_id.json() == by_name.json()
    listed = (await admin_client.get("/api/admin/packages")).json()["items"][0]
    assert {key: by_id.json()[key] for key in listed} == listed
    assert by_id.json()["chunks"] == [
        {
            "index": 0,
            "sha1": hashlib.sha1(content, usedforsecurity=False).hexdigest(),
            "sha256": hashlib.sha256(content).hexdigest(),
        }
    ]


async def test_a_numeric_filename_is_found_when_no_id_matches(
    admin_client: httpx.AsyncClient,
) -> None:
    await uploaded(admin_client, "20240101", b"dated")
    response = await admin_client.get("/api/admin/packages/20240101")
    assert response.status_code == 200
    assert response.json()["filename"] == "20240101"


async def test_non_ascii_filename_round_trips(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    content = content_of(700, seed=9)
    for name in ("Résumé Tool.pkg", "日本語インストーラ.pkg"):
        result = await uploaded(admin_client, name, content + name.encode())
        assert result["filename"] == name
        assert (await admin_client.get(f"/api/admin/packages/{name}")).json()["filename"] == name
        assert (settings.share_dir / name).read_bytes() == content + name.encode()
        served = await admin_client.get(f"/share/{name}")
        assert served.status_code == 200
        assert served.content == content + name.encode()


async def test_change_stage(admin_client: httpx.AsyncClient) -> None:
    result = await uploaded(admin_client, "Promote.pkg", b"promote me", stage="Dev")
    response = await admin_client.patch(
        f"/api/admin/packages/{result['id']}", json={"stage": "Test"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["stage"] == "Test"
    assert response.json()["sha1"] == result["sha1"]
    response = await admin_client.patch("/api/admin/packages/Promote.pkg", json={"stage": "Prod"})
    assert response.status_code == 200, response.text
    assert response.json()["stage"] == "Prod"
    package = (await admin_client.get("/api/admin/packages/Promote.pkg")).json()
    assert package["stage"] == "Prod"
    assert package["uuid"] == result["uuid"]
    unchanged = await admin_client.patch("/api/admin/packages/Promote.pkg", json={"stage": "Prod"})
    assert unchanged.status_code == 200
    assert unchanged.json()["stage"] == "Prod"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"stage": "Staging"}, "stage"),
        ({}, "stage"),
        ({"stage": "Prod", "status": "Failed"}, "status"),
        ({"stage": None}, "stage"),
    ],
)
async def test_change_stage_refuses_bad_bodies(
    admin_client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    await uploaded(admin_client, "Stay.pkg", b"stay", stage="Test")
    response = await admin_client.patch("/api/admin/packages/Stay.pkg", json=body)
    assert_error(response, 422, "invalid_input", field)
    package = (await admin_client.get("/api/admin/packages/Stay.pkg")).json()
    assert package["stage"] == "Test"
    assert package["status"] == "Public"


@pytest.mark.parametrize("raw", [b'{"stage": ', b"stage=Prod", b"", b"[]"])
async def test_change_stage_refuses_malformed_json(
    admin_client: httpx.AsyncClient, raw: bytes
) -> None:
    await uploaded(admin_client, "Json.pkg", b"json", stage="Test")
    response = await admin_client.patch(
        "/api/admin/packages/Json.pkg",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 422, "invalid_input")
    assert response.json()["message"].startswith("Invalid request")
    assert (await admin_client.get("/api/admin/packages/Json.pkg")).json()["stage"] == "Test"


async def test_delete_removes_row_and_file(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    keep = await uploaded(admin_client, "Keep.pkg", b"keep")
    gone = await uploaded(admin_client, "Gone.pkg", b"gone")
    response = await admin_client.delete(f"/api/admin/packages/{gone['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert_error(await admin_client.get("/api/admin/packages/Gone.pkg"), 404, "not_found")
    assert_error(await admin_client.get("/share/Gone.pkg"), 404, "not_found")
    await assert_nothing_written(admin_client, settings, shared=["Keep.pkg"])

    response = await admin_client.delete("/api/admin/packages/Keep.pkg")
    assert response.status_code == 204
    await assert_nothing_written(admin_client, settings)
    assert keep["id"] != gone["id"]


async def test_delete_then_upload_the_same_name_again(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    first = await uploaded(admin_client, "Again.pkg", b"first")
    assert (await admin_client.delete("/api/admin/packages/Again.pkg")).status_code == 204
    second = await uploaded(admin_client, "Again.pkg", b"second")
    assert second["uuid"] != first["uuid"]
    assert (settings.share_dir / "Again.pkg").read_bytes() == b"second"


@pytest.mark.parametrize("ref", ["999", "Nope.pkg", "0"])
async def test_unknown_package_is_404(admin_client: httpx.AsyncClient, ref: str) -> None:
    await uploaded(admin_client, "Exists.pkg", b"exists")
    assert_error(await admin_client.get(f"/api/admin/packages/{ref}"), 404, "not_found", ref)
    response = await admin_client.patch(f"/api/admin/packages/{ref}", json={"stage": "Dev"})
    assert_error(response, 404, "not_found", ref)
    assert_error(await admin_client.delete(f"/api/admin/packages/{ref}"), 404, "not_found", ref)
    package = (await admin_client.get("/api/admin/packages/Exists.pkg")).json()
    assert package["stage"] == "Prod"


async def test_read_only_user_can_look_but_not_change(
    admin_client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    result = await uploaded(admin_client, "Look.pkg", b"look")
    created = await admin_client.post(
        "/api/admin/users",
        json={
            "username": "viewer",
            "password": "viewer passphrase",
            "role": "read_only",
            "must_change_password": False,
        },
    )
    assert created.status_code == 201, created.text
    async with anonymous(app) as viewer:
        login = await viewer.post(
            "/api/auth/login", json={"username": "viewer", "password": "viewer passphrase"}
        )
        viewer.headers["Authorization"] = f"Bearer {login.json()['token']}"
        listing = await viewer.get("/api/admin/packages")
        assert listing.status_code == 200
        assert listing.json()["total"] == 1
        one = await viewer.get(f"/api/admin/packages/{result['id']}")
        assert one.status_code == 200
        assert one.json()["sha1"] == result["sha1"]

        refused = await upload(viewer, "Sneaky.pkg", b"sneaky")
        assert_error(refused, 403, "forbidden", "package_manager", "read_only")
        refused = await viewer.patch("/api/admin/packages/Look.pkg", json={"stage": "Dev"})
        assert_error(refused, 403, "forbidden", "package_manager")
        refused = await viewer.delete("/api/admin/packages/Look.pkg")
        assert_error(refused, 403, "forbidden", "package_manager")

    package = (await admin_client.get("/api/admin/packages/Look.pkg")).json()
    assert package["stage"] == "Prod"
    await assert_nothing_written(admin_client, settings, shared=["Look.pkg"])


async def test_package_manager_can_upload_change_and_delete(
    admin_client: httpx.AsyncClient, app: FastAPI
) -> None:
    created = await admin_client.post(
        "/api/admin/users",
        json={
            "username": "autopkg",
            "password": "autopkg passphrase",
            "role": "package_manager",
            "must_change_password": False,
        },
    )
    assert created.status_code == 201, created.text
    async with anonymous(app) as autopkg:
        login = await autopkg.post(
            "/api/auth/login", json={"username": "autopkg", "password": "autopkg passphrase"}
        )
        autopkg.headers["Authorization"] = f"Bearer {login.json()['token']}"
        assert (await upload(autopkg, "Auto.pkg", b"auto", stage="Dev")).status_code == 201
        patched = await autopkg.patch("/api/admin/packages/Auto.pkg", json={"stage": "Prod"})
        assert patched.status_code == 200
        assert (await autopkg.delete("/api/admin/packages/Auto.pkg")).status_code == 204


async def test_the_two_spellings_of_an_accented_name_are_one_package(
    admin_client: httpx.AsyncClient,
) -> None:
    composed = unicodedata.normalize("NFC", "café.pkg")
    decomposed = unicodedata.normalize("NFD", "café.pkg")
    assert composed != decomposed
    first = await uploaded(admin_client, decomposed, b"first version")
    assert first["filename"] == composed
    again = await upload(admin_client, composed, b"other content")
    assert again.status_code == 409
    listed = (await admin_client.get("/api/admin/packages")).json()["items"]
    assert [item["filename"] for item in listed] == [composed]
    for spelling in (composed, decomposed):
        served = await admin_client.get(f"/share/{quote(spelling)}")
        assert served.status_code == 200
        assert served.content == b"first version"
        found = await admin_client.get(f"/api/admin/packages/{quote(spelling)}")
        assert found.json()["uuid"] == first["uuid"]
