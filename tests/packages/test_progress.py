"""The rate a process shows for a download another process runs, from its saved progress."""

from __future__ import annotations

import time

from ods.packages.progress import WATCHED, Downloads

CHUNK = 1024 * 1024


def test_the_rate_comes_from_the_saved_counts_once_they_move() -> None:
    downloads = Downloads()
    assert downloads.watched_rate("u", 3, CHUNK) is None  # first look
    assert downloads.watched_rate("u", 3, CHUNK) is None  # not moved yet
    time.sleep(0.2)
    rate = downloads.watched_rate("u", 5, CHUNK)
    assert rate is not None
    # Two chunks in a little over 0.2 s (however busy the machine, well under 5 s).
    assert 2 * CHUNK / 5.0 < rate <= 2 * CHUNK / 0.2


def test_a_fetch_started_again_from_fewer_chunks_starts_the_window_again() -> None:
    downloads = Downloads()
    downloads.watched_rate("u", 10, CHUNK)
    time.sleep(0.05)
    assert downloads.watched_rate("u", 4, CHUNK) is None
    time.sleep(0.05)
    rate = downloads.watched_rate("u", 6, CHUNK)
    assert rate is not None
    # Two chunks since the restart (0.05 s before), not eight since the first look.
    assert 2 * CHUNK / 5.0 < rate <= 2 * CHUNK / 0.05


def test_only_so_many_downloads_are_remembered() -> None:
    downloads = Downloads()
    for index in range(WATCHED + 10):
        downloads.watched_rate(f"u{index}", 1, CHUNK)
    # The oldest were forgotten: their next look is a first look again.
    assert downloads.watched_rate("u0", 2, CHUNK) is None
    assert downloads.watched_rate(f"u{WATCHED + 9}", 2, CHUNK) is not None
