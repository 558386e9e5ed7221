"""The list's kept items: reused only for a row that is the same in every column."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from ods.packages.digest import CHUNK_SIZE
from ods.packages.progress import DownloadProgress, Downloads
from ods.packages.views import LIST_JSON_OPTIONS, ListedItems, package_row_dict

CREATED = dt.datetime(2026, 11, 27, 13, 10, 39, 123456)


def row(id_: int, **changes: Any) -> tuple[Any, ...]:
    values = {
        "id": id_,
        "uuid": f"00000000-0000-4000-8000-{id_:012d}",
        "filename": f"package-{id_}.pkg",
        "file_size": 3 * CHUNK_SIZE,
        "sha1": "1" * 40,
        "sha256": "2" * 64,
        "stage": "Prod",
        "status": "Public",
        "status_reason": None,
        "created": CREATED,
        "chunks_done": 0,
        "source": None,
        "origin_iss": None,
        "verified": False,
        "sha512": "5" * 128,
    }
    values.update(changes)
    return tuple(values.values())


def listed(items: ListedItems, rows: list[tuple[Any, ...]], downloads: Downloads) -> Any:
    found = items.items(rows, downloads, complete=True)
    return orjson.loads(orjson.dumps(found, option=LIST_JSON_OPTIONS))


def test_an_item_is_what_its_row_shows_and_changes_with_any_column() -> None:
    items, downloads = ListedItems(), Downloads()
    first = listed(items, [row(1), row(2)], downloads)
    assert first[0]["uuid"] == "00000000000040008000000000000001"
    assert first[0]["created"] == "2026-11-27T13:10:39"
    assert first[0]["created_ts"] == 1795785039
    assert first[0]["file_size_hr"] == "3.0 MB"
    assert first == orjson.loads(
        orjson.dumps(
            [package_row_dict(row(n), downloads) for n in (1, 2)], option=LIST_JSON_OPTIONS
        )
    )
    changes: dict[str, Any] = {
        "stage": "Dev",
        "status": "Withdrawn",
        "status_reason": "Stage Dev is not served here",
        "filename": "renamed.pkg",
        "sha512": None,
        "verified": True,
        "origin_iss": "a" * 32,
        "created": CREATED + dt.timedelta(seconds=1),
    }
    for column, value in changes.items():
        shown = listed(items, [row(1), row(2, **{column: value})], downloads)
        assert shown[0] == first[0]
        assert shown[1] != first[1], column
        assert shown[1] == listed(ListedItems(), [row(2, **{column: value})], downloads)[0]


def test_a_download_in_flight_is_shown_live_every_time() -> None:
    items, downloads = ListedItems(), Downloads()
    downloading = row(1, status="Downloading", chunks_done=0, source="peer-a")
    progress = DownloadProgress(chunks_total=3, chunks_done=1, bytes_done=CHUNK_SIZE, source="a")
    downloads.start(downloading[1], progress)
    assert listed(items, [downloading], downloads)[0]["progress"]["chunks_done"] == 1
    progress.chunks_done = 2
    progress.waiting = "waiting for disk space"
    shown = listed(items, [downloading], downloads)[0]
    assert shown["progress"]["chunks_done"] == 2
    assert shown["status_reason"] == "waiting for disk space"


def test_only_a_complete_listing_replaces_what_is_kept() -> None:
    items, downloads = ListedItems(), Downloads()
    listed(items, [row(1), row(2)], downloads)
    page = items.items([row(2, stage="Dev")], downloads, complete=False)
    assert orjson.loads(orjson.dumps(page, option=LIST_JSON_OPTIONS))[0]["stage"] == "Dev"
    # Package 1 is still kept (a page does not drop it), and still checked against its row.
    assert listed(items, [row(1, stage="Test"), row(2)], downloads)[0]["stage"] == "Test"
    assert listed(items, [], downloads) == []
    items.close()
    assert listed(items, [row(1)], downloads)[0]["stage"] == "Prod"
