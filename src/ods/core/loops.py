"""A step that runs every few seconds in the background of `ods serve`.

An expected failure (the database or a file refusing, an ODS error) is one
WARNING line, and the same line repeated is rate-limited; anything else is a
bug and is logged at ERROR with its traceback. The loop goes on either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from ods.core.errors import OdsError
from ods.core.logs import Repeats


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
        self._failures = Repeats()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"ods {self.what}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
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
            await asyncio.sleep(self.seconds)
