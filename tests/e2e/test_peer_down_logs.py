"""A peer that is down is an expected condition: one WARNING line that names it and says
why, no traceback, however many times it is tried."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.helpers.processes.mesh import mesh_of, random_file

pytestmark = pytest.mark.e2e


async def test_a_peer_that_is_down_is_one_warning_line(tmp_path: Path) -> None:
    with mesh_of(tmp_path, 2, ODS_RECONCILE_INTERVAL="10") as nodes:
        for node in nodes:
            await node.login()
            await node.configure("Dev")
        receiver, down = nodes
        await receiver.register_with(down)
        down.stop()
        path = tmp_path / "Firefox.pkg"
        random_file(path, 200_000)
        await receiver.upload(path)  # its announcement to the peer that is down is retried
        # Two reconciliations and several retries of the announcement.
        await asyncio.sleep(25)
        assert receiver.server is not None
        log = receiver.server.output()
    warnings = [line for line in log.splitlines() if f"peer {down.name} is unreachable" in line]
    assert len(warnings) == 1, warnings
    assert "WARNING" in warnings[0]
    # Why: it refuses connections, or (when a connection to it was open as it stopped)
    # that connection closed; never only the name of an exception.
    assert "cannot connect" in warnings[0] or "connection closed" in warnings[0], warnings[0]
    assert "Traceback" not in log
    assert " ERROR " not in log
