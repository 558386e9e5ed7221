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


async def test_stop_lets_the_step_under_way_finish_instead_of_cancelling_it() -> None:
    began = asyncio.Event()
    finished: list[bool] = []

    async def step() -> None:
        began.set()
        await asyncio.sleep(0.2)
        finished.append(True)

    loop = Every(60, step, what="test round", log=log)
    loop.start()
    await began.wait()
    await loop.stop()

    assert finished == [True]


async def test_stop_does_not_wait_out_the_interval_between_steps() -> None:
    steps: list[int] = []

    async def step() -> None:
        steps.append(1)

    loop = Every(3600, step, what="test round", log=log)
    loop.start()
    await asyncio.sleep(0.05)
    started = asyncio.get_running_loop().time()
    await loop.stop()

    assert steps == [1]
    assert asyncio.get_running_loop().time() - started < 1


async def test_a_step_that_outlasts_the_grace_is_cancelled_and_one_that_ignores_it_is_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    cancelled: list[bool] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    loop = Every(60, slow, what="slow round", log=log)
    loop.start()
    await asyncio.sleep(0.05)
    await loop.stop(grace=0.1)
    assert cancelled == [True]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue

    loop = Every(60, stubborn, what="stubborn round", log=log)
    loop.start()
    await asyncio.sleep(0.05)
    await loop.stop(grace=0.1)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["stubborn round did not stop within 0.2 s; left behind"]
    release.set()
    await asyncio.sleep(0.05)
