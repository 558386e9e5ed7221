"""Fixtures for the in-process mesh tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.helpers.mesh import Mesh


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    async with contextlib.AsyncExitStack() as stack:
        mesh = Mesh(tmp_path, stack)
        yield mesh
        # Jobs call other nodes' apps in this process: let every node's jobs
        # finish (or be cancelled) while all the apps are still up.
        for node in mesh.nodes.values():
            await node.context.queue.close()
