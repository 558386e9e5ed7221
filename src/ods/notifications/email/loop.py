"""The mailer: runs a round of email delivery every few seconds in `ods serve`."""

from __future__ import annotations

import logging

from ods.core.context import Context
from ods.core.loops import Every
from ods.notifications.email import deliver

log = logging.getLogger(__name__)

TICK_SECONDS = 2.0


class Mailer(Every):
    def __init__(self, context: Context) -> None:
        super().__init__(TICK_SECONDS, lambda: deliver.tick(context), what="email round", log=log)
