"""The background loops of `ods serve` (webhook dispatch, email rounds): an expected
failure is one WARNING line however often it repeats, a bug is logged with its
traceback, and the loop goes on after either."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy.exc import OperationalError

from ods.core.loops import Every

log = logging.getLogger("ods.test.loops")


async def test_expected_failures_are_one_warning_and_bugs_a_traceback_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    steps: list[int] = []

    async def step() -> None:
        steps.append(len(steps))
        if len(steps) <= 5:
            raise OperationalError("UPDATE webhooks", {}, Exception("database is locked"))
        if len(steps) == 6:
            raise KeyError("a bug")

    loop = Every(0.01, step, what="test round", log=log)
    loop.start()
    for _ in range(500):
        if len(steps) >= 8:
            break
        await asyncio.sleep(0.01)
    await loop.stop()

    assert len(steps) >= 8
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(warnings) == 1
    assert warnings[0].getMessage() == "test round failed: (builtins.Exception) database is locked"
    assert warnings[0].exc_info is None
    assert len(errors) == 1
    assert "KeyError('a bug')" in errors[0].getMessage()
    assert errors[0].exc_info is not None
