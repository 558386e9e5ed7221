"""The mailer: runs a round of email delivery every few seconds in `ods serve`."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError

from ods.core.context import Context
from ods.core.errors import OdsError
from ods.core.logs import Repeats
from ods.notifications.email import deliver

log = logging.getLogger(__name__)

TICK_SECONDS = 2.0


class Mailer:
    def __init__(self, context: Context) -> None:
        self.context = context
        self._task: asyncio.Task[None] | None = None
        self._failures = Repeats()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ods mailer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await deliver.tick(self.context)
            except asyncio.CancelledError:
                raise
            except (OdsError, SQLAlchemyError, OSError) as exc:
                text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self._failures.log(log, logging.WARNING, f"email round failed: {text}")
            except Exception as exc:
                self._failures.log(log, logging.ERROR, f"email round failed: {exc!r}", exc_info=exc)
            else:
                self._failures.clear()
            await asyncio.sleep(TICK_SECONDS)
