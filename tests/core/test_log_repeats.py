"""The same failure again and again is logged once, then at most once per interval."""

from __future__ import annotations

import logging

import pytest

from ods.core.logs import Repeats

log = logging.getLogger("ods.test.repeats")


def test_repeated_lines_are_held_back_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ods.test.repeats")
    repeats = Repeats(every=300)
    for _ in range(50):
        repeats.log(log, logging.WARNING, "scheduler tick failed: database or disk is full")
    repeats.log(log, logging.WARNING, "scheduler tick failed: peer down")
    assert [r.getMessage() for r in caplog.records] == [
        "scheduler tick failed: database or disk is full",
        "scheduler tick failed: peer down",
    ]
    assert all(r.exc_info is None for r in caplog.records)


def test_a_line_comes_back_after_the_interval_with_its_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ods.test.repeats")
    repeats = Repeats(every=0.0)
    repeats.log(log, logging.WARNING, "tick failed")
    repeats.every = 3600.0
    repeats.log(log, logging.WARNING, "tick failed")
    repeats.log(log, logging.WARNING, "tick failed")
    repeats.every = 0.0
    repeats.log(log, logging.WARNING, "tick failed")
    assert [r.getMessage() for r in caplog.records] == [
        "tick failed",
        "tick failed (and 2 more time(s) since it was last logged)",
    ]


def test_once_it_works_again_a_failure_is_said_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ods.test.repeats")
    repeats = Repeats(every=300)
    repeats.log(log, logging.WARNING, "tick failed")
    repeats.clear()
    repeats.log(log, logging.WARNING, "tick failed")
    assert len(caplog.records) == 2
