"""The mesh's clock: reconcile at start-up and on an interval, poll when firewalled, tidy up.

Each tick also takes over the work of processes that stopped: their jobs
(`takeover`) and, once per lease, their publishes and uploads (`recovery`).
A tick that fails logs one line (a traceback only for what is not an
expected condition), and the same failure again is held back (`Repeats`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from ods.core.errors import OdsError
from ods.core.logs import Repeats
from ods.mesh import takeover
from ods.mesh.peers import verification
from ods.mesh.reconcile import reconcile_all
from ods.packages.recovery import recover
from ods.server.identity import get_identity

if TYPE_CHECKING:
    from ods.core.context import Context
log = logging.getLogger(__name__)

TICK_SECONDS = 5.0


class Scheduler:
    """Starts reconciliation at start-up and on its interval, and reclaims abandoned jobs."""

    def __init__(self, context: Context, reconcile_every: float, poll_every: float) -> None:
        self.context = context
        self.reconcile_every = reconcile_every
        self.poll_every = poll_every
        self._task: asyncio.Task[None] | None = None
        self._failures = Repeats()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ods scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        last = recovered = 0.0
        while True:
            try:
                me = await get_identity(self.context.db, self.context.cipher)
                every = self.poll_every if me.firewalled_mode else self.reconcile_every
                if time.monotonic() - last >= every or last == 0.0:
                    last = time.monotonic()
                    await reconcile_all(self.context)
                await takeover.resume(self.context)
                if time.monotonic() - recovered >= self.context.settings.work_lease:
                    recovered = time.monotonic()
                    await recover(self.context)
                await verification.prune_nonces(self.context)
            except asyncio.CancelledError:
                raise
            except (OdsError, SQLAlchemyError, OSError) as exc:
                # Expected conditions: a peer or the database out of reach, a full disk.
                text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self._failures.log(log, logging.WARNING, f"scheduler tick failed: {text}")
            except Exception as exc:
                self._failures.log(
                    log, logging.ERROR, f"scheduler tick failed: {exc!r}", exc_info=exc
                )
            else:
                self._failures.clear()
            await asyncio.sleep(TICK_SECONDS)
