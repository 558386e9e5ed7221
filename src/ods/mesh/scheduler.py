"""The mesh's clock: reconcile at start-up and on an interval, poll when firewalled, tidy up.

Each tick also takes over the work of processes that stopped: their jobs
(`takeover`) and, once per lease, their publishes and uploads (`recovery`).
A tick runs as an `Every` step: one that fails logs one line, and a stop lets the
tick under way finish.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ods.core.loops import Every
from ods.mesh import takeover
from ods.mesh.peers import verification
from ods.mesh.reconcile import reconcile_all
from ods.packages.recovery import recover
from ods.server.identity import get_identity

if TYPE_CHECKING:
    from ods.core.context import Context
log = logging.getLogger(__name__)

TICK_SECONDS = 5.0


class Scheduler(Every):
    """Starts reconciliation at start-up and on its interval, and reclaims abandoned jobs."""

    def __init__(self, context: Context, reconcile_every: float, poll_every: float) -> None:
        super().__init__(TICK_SECONDS, self._tick, what="scheduler tick", log=log)
        self.context = context
        self.reconcile_every = reconcile_every
        self.poll_every = poll_every
        self._last_reconcile = 0.0
        self._last_recovery = 0.0

    async def _tick(self) -> None:
        me = await get_identity(self.context.db, self.context.cipher)
        every = self.poll_every if me.firewalled_mode else self.reconcile_every
        now = time.monotonic()
        if self._last_reconcile == 0.0 or now - self._last_reconcile >= every:
            self._last_reconcile = now
            await reconcile_all(self.context)
        await takeover.resume(self.context)
        now = time.monotonic()
        if now - self._last_recovery >= self.context.settings.work_lease:
            self._last_recovery = now
            await recover(self.context)
        await verification.prune_nonces(self.context)
