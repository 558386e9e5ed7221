"""A bounded chaos run on five real `ods serve` processes of three stages: uploads,
replacements, deletes, promotions and demotions on random nodes while nodes are killed
with SIGKILL mid-download and started again. The mesh converges: one version per
package everywhere, served where its stage is taken, withdrawn where it is not, every
served byte as listed, no staging left. The long soak is `bench/chaos.py`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.chaos import OPENING, run_chaos

pytestmark = pytest.mark.e2e


async def test_a_mesh_under_chaos_converges(tmp_path: Path) -> None:
    report = await run_chaos(tmp_path, nodes=5, seconds=25, settle=150, seed=7)

    assert report.problems == []
    assert report.converged_after is not None
    assert report.kills >= 1
    for kind in set(OPENING) - {"kill"}:
        assert report.operations[kind] >= 1, report.operations
    assert report.packages >= 2
