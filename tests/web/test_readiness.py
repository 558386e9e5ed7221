"""/readyz says why a server is not ready, and reads do not need the database to take writes.

The database lives on a small tmpfs of its own (outside the data dir), which
the test fills up for real; and the data dir's disk gets a reserve larger
than it can ever have free.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ods.core.config import load_settings
from tests.helpers.api import TEST_DATABASE_KEY, anonymous, assert_error, bearer, login, started
from tests.helpers.disk import fill, small_disk

PASSWORD = "a readiness passphrase"


async def test_a_database_that_refuses_writes_is_not_ready_and_reads_still_work(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with small_disk(tmp_path / "db", 16) as db_disk:
        settings = load_settings(
            data_dir=tmp_path / "data",
            database_url=f"sqlite:///{db_disk / 'ods.db'}",
            database_key=TEST_DATABASE_KEY,
            admin_password=PASSWORD,
            min_free_space="1M",
        )
        async with started(settings) as app, anonymous(app) as client:
            assert (await client.get("/readyz")).status_code == 200
            first = await login(client, "admin", PASSWORD)
            second = await login(client, "admin", PASSWORD)  # not used yet
            assert (await client.get("/api/auth/me", headers=bearer(first))).status_code == 200

            filler = fill(db_disk, leave=0)
            ready = await client.get("/readyz")
            assert_error(ready, 503, "unavailable", "database refuses writes", "full")
            # Its first use would record last_used: the write fails, the read does not.
            with caplog.at_level(logging.WARNING, logger="ods.core.auth"):
                for _ in range(3):
                    listing = await client.get("/api/admin/packages", headers=bearer(second))
                    assert listing.status_code == 200, listing.text
            warned = [r for r in caplog.records if "last used" in r.getMessage()]
            assert len(warned) == 1, "one warning a minute, not one a request"
            assert warned[0].exc_info is None

            filler.unlink()
            assert (await client.get("/readyz")).status_code == 200


async def test_a_data_disk_below_the_reserve_is_not_ready(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path / "data",
        database_key=TEST_DATABASE_KEY,
        admin_password=PASSWORD,
        min_free_space="99.999%",
    )
    async with started(settings) as app, anonymous(app) as client:
        ready = await client.get("/readyz")
        error = assert_error(ready, 503, "unavailable", "data disk is full", "ODS_MIN_FREE_SPACE")
        (numbers,) = error["details"]
        assert numbers["free_bytes"] < numbers["reserve_bytes"]


@pytest.mark.parametrize("value", ["12%x", "100%", "-1%", "lots"])
def test_a_reserve_that_is_neither_a_size_nor_a_percentage_is_refused(value: str) -> None:
    with pytest.raises(Exception, match="ODS_MIN_FREE_SPACE"):
        load_settings(data_dir=Path("/nonexistent"), min_free_space=value, create_dirs=False)
