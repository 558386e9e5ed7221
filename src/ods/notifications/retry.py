"""When a failed webhook delivery or mail is tried again."""

from __future__ import annotations

import datetime as dt
import random

RETRY_FOR = dt.timedelta(hours=24)
MAX_WAIT_SECONDS = 3600.0


def retry_delay(base: float, attempts: int) -> float:
    """Seconds before the next try after `attempts` tries: `base`, then doubling up to an
    hour, each wait ±25 % so that many failures do not come back at the same moment."""
    wait = min(MAX_WAIT_SECONDS, base * 2.0 ** max(0, attempts - 1))
    return wait * random.uniform(0.75, 1.25)  # noqa: S311 - jitter, not security
