"""A step that runs every few seconds in the background of `ods serve`.

An expected failure (the database or a file refusing, an ODS error) is one
WARNING line, and the same line repeated is rate-limited; anything else is a
bug and is logged at ERROR with its traceback. The loop goes on either way.

Stopping lets the step under way finish rather than cancelling it in the middle
of a database call: a query cancelled half-way can leave its connection unusable,
and closing the engine then waits for it. A step that does not finish within
`STOP_GRACE_SECONDS` is cancelled, and one that ignores the cancellation too is
left behind with a WARNING, so that a shutdown always ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from ods.core.errors import OdsError
from ods.core.logs import Repeats

STOP_GRACE_SECONDS = 10.0


class Every:
    def __init__(
        self,
        seconds: float,
        step: Callable[[], Awaitable[None]],
        *,
        what: str,
        log: logging.Logger,
    ) -> None:
        self.seconds = seconds
        self.step = step
        self.what = what
        self.log = log
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._failures = Repeats()

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"ods {self.what}")

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        finished, _ = await asyncio.wait({task}, timeout=grace)
        if not finished:
            task.cancel()
            finished, _ = await asyncio.wait({task}, timeout=grace)
        if not finished:
            self.log.warning("%s did not stop within %.3g s; left behind", self.what, 2 * grace)
            return
        if not task.cancelled() and task.exception() is not None:
            self.log.error("%s ended with an error", self.what, exc_info=task.exception())

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except (OdsError, SQLAlchemyError, OSError) as exc:
                text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self._failures.log(self.log, logging.WARNING, f"{self.what} failed: {text}")
            except Exception as exc:
                self._failures.log(
                    self.log, logging.ERROR, f"{self.what} failed: {exc!r}", exc_info=exc
                )
            else:
                self._failures.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.seconds)
