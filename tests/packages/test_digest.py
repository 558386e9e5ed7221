"""DigestingWriter: whatever the split of the incoming bytes, the file and digests are exact."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from ods.packages.digest import CHUNK_SIZE, DigestingWriter

SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 12345]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("seed", [1, 2])
async def test_random_splits_give_exact_digests(tmp_path: Path, size: int, seed: int) -> None:
    rng = random.Random(seed)
    data = os.urandom(size)
    path = tmp_path / "staged.part"
    writer = DigestingWriter(path)
    offset = 0
    while offset < size:
        step = rng.choice([1, 100, 65536, CHUNK_SIZE + 5, 3 * CHUNK_SIZE])
        writer.buffer(data[offset : offset + step])
        offset += step
        if rng.random() < 0.7:
            await writer.drain()
    digests = await writer.finish()

    assert path.read_bytes() == data
    assert digests.size == size
    assert digests.sha1 == hashlib.sha1(data, usedforsecurity=False).hexdigest()
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    assert digests.sha512 == hashlib.sha512(data).hexdigest()
    expected = [
        (index, hashlib.sha256(data[start : start + CHUNK_SIZE]).hexdigest())
        for index, start in enumerate(range(0, size, CHUNK_SIZE))
    ]
    assert [(c.index, c.sha256) for c in digests.chunks] == expected


async def test_abort_removes_the_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "staged.part"
    writer = DigestingWriter(path)
    writer.buffer(os.urandom(CHUNK_SIZE + 10))
    await writer.drain()
    await writer.abort()
    assert not path.exists()
