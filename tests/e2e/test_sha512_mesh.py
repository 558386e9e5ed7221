"""SHA-512 travels in the origin's signed statement: a receiver shows the origin's."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.helpers.packages import MIB
from tests.helpers.processes.mesh import mesh_of, random_file

pytestmark = pytest.mark.e2e


async def test_the_receiver_shows_the_origins_sha512(tmp_path: Path) -> None:
    with mesh_of(tmp_path, 2) as nodes:
        origin, receiver = nodes
        for node in nodes:
            await node.login()
            await node.configure("Dev")
        await origin.register_with(receiver)
        source = tmp_path / "Tool.pkg"
        sha256 = random_file(source, 2 * MIB + 17)
        sha512 = hashlib.sha512(source.read_bytes()).hexdigest()
        await origin.upload(source)
        await receiver.wait_served("Tool.pkg", sha256)
        there = await receiver.package("Tool.pkg")
        here = await origin.package("Tool.pkg")
        assert there is not None
        assert here is not None
        assert here["sha512"] == sha512
        assert there["sha512"] == sha512
