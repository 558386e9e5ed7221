"""How many jobs of each concurrency group run in this process.

A payload may name a group (`JobPayload.group()`; today every job with one
peer is in that peer's group). At most `limit` jobs of one group run at once
in a process, so one peer that is slow, by fault or on purpose, holds only
its share of the job slots and the other peers' jobs keep theirs. The runner
asks here before it claims a job: a job whose group is full is not claimed,
counts no attempt, and goes back to the queue, outside the slots, to ask
again after a wait that grows while the group stays full.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from ods.core.context import Context

FIRST_WAIT_SECONDS = 0.5
LONGEST_WAIT_SECONDS = 8.0


@dataclass
class Waiting:
    group: str
    times: int = 0  # turned away so far


class JobGroups:
    """Jobs running per group in this process, and the jobs turned away from a full group."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running: dict[str, int] = {}
        # Until its group has room, a job turned away is put back without its
        # row being read again.
        self.waiting: dict[str, Waiting] = {}

    @classmethod
    def for_context(cls, context: Context) -> Self:
        return cls(context.settings.job_group_limit)

    def full(self, group: str | None) -> bool:
        return group is not None and self.running.get(group, 0) >= self.limit

    def still_full(self, key: str) -> bool:
        """Whether job `key` was turned away and its group is still full."""
        waiting = self.waiting.get(key)
        return waiting is not None and self.full(waiting.group)

    def enter(self, key: str, group: str | None) -> bool:
        """Take a place in `group` for job `key`; False, and `key` waiting, if it is full."""
        if group is not None and self.full(group):
            self.waiting.setdefault(key, Waiting(group)).group = group
            return False
        self.waiting.pop(key, None)
        if group is not None:
            self.running[group] = self.running.get(group, 0) + 1
        return True

    def leave(self, group: str | None) -> None:
        if group is None:
            return
        left = self.running[group] - 1
        if left:
            self.running[group] = left
        else:
            del self.running[group]

    def wait(self, key: str) -> float:
        """Seconds before job `key`, turned away again, asks again: doubling, jittered."""
        waiting = self.waiting[key]
        waiting.times += 1
        doubled = FIRST_WAIT_SECONDS * 2.0 ** min(waiting.times - 1, 10)
        seconds = min(LONGEST_WAIT_SECONDS, doubled)
        return seconds * random.uniform(0.75, 1.25)  # noqa: S311 - jitter, not security

    def forget(self, key: str) -> None:
        """Job `key` no longer waits (its row is not pending)."""
        self.waiting.pop(key, None)

    def close(self) -> None:
        self.running.clear()
        self.waiting.clear()
