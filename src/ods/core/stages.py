"""Stage tags: Dev < Test < Prod."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    DEV = "Dev"
    TEST = "Test"
    PROD = "Prod"

    @property
    def rank(self) -> int:
        return list(Stage).index(self)

    def accepts(self, package_stage: Stage) -> bool:
        """A server takes packages whose stage is at least its own."""
        return package_stage.rank >= self.rank
