"""Which handler runs each kind of job, how often it may try, and what it does on giving up.

The registry is built from an explicit list (see `ods.lifecycle`), so the
server and `ods worker` run the same kinds whatever modules they import.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ods.jobs.kinds import JobPayload

if TYPE_CHECKING:
    from ods.core.context import Context

P = TypeVar("P", bound=JobPayload)


@dataclass(frozen=True)
class JobHandler(Generic[P]):
    payload: type[P]
    run: Callable[[Context, P], Awaitable[None]]
    max_attempts: int = 8
    # Runs once when the job gives up, with the last reason.
    on_failure: Callable[[Context, P, str], Awaitable[None]] | None = None

    @property
    def kind(self) -> str:
        return self.payload.kind


class JobRegistry:
    def __init__(self, handlers: Iterable[JobHandler[Any]]) -> None:
        self._handlers: dict[str, JobHandler[Any]] = {}
        for handler in handlers:
            if handler.kind in self._handlers:
                raise ValueError(f"two handlers for job kind {handler.kind!r}")
            self._handlers[handler.kind] = handler

    def get(self, kind: str) -> JobHandler[Any] | None:
        return self._handlers.get(kind)

    @property
    def kinds(self) -> list[str]:
        return sorted(self._handlers)
