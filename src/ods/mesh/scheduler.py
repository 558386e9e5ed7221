"""The mesh's clock: reconcile at start-up and on an interval, poll when firewalled, tidy up."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ods.core.disk import is_disk_full
from ods.core.errors import one_line
from ods.jobs import runner as jobs
from ods.mesh.peers import verification
from ods.mesh.reconcile import reconcile_all
from ods.server.identity import get_identity

if TYPE_CHECKING:
    from ods.core.context import Context
log = logging.getLogger(__name__)

TICK_SECONDS = 5.0
DISK_FULL_WARNING_SECONDS = 60.0


class Scheduler:
    """Starts reconciliation at start-up and on its interval, and reclaims abandoned jobs."""

    def __init__(self, context: Context, reconcile_every: float, poll_every: float) -> None:
        self.context = context
        self.reconcile_every = reconcile_every
        self.poll_every = poll_every
        self._task: asyncio.Task[None] | None = None
        self._warned = -DISK_FULL_WARNING_SECONDS

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ods scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        last = 0.0
        while True:
            try:
                me = await get_identity(self.context.db, self.context.cipher)
                every = self.poll_every if me.firewalled_mode else self.reconcile_every
                if time.monotonic() - last >= every or last == 0.0:
                    last = time.monotonic()
                    await reconcile_all(self.context)
                await jobs.resume_jobs(self.context, reclaim_all_running=False)
                await verification.prune_nonces(self.context)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_disk_full(exc):
                    log.exception("scheduler tick failed")
                elif time.monotonic() - self._warned >= DISK_FULL_WARNING_SECONDS:
                    # Expected while the disk is full: one line a minute, not a traceback a tick.
                    self._warned = time.monotonic()
                    log.warning("scheduler tick skipped, the disk is full: %s", one_line(exc))
            await asyncio.sleep(TICK_SECONDS)
