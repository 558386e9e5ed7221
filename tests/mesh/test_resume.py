"""A fetch resumes from its staging file and fetches again what fails its check."""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ods.core import platform
from ods.mesh.inbound.chunks import RUN_CHUNKS
from ods.mesh.inbound.transfer import StagingFile
from tests.helpers.mesh import Mesh, MeshTransport, Node, served_sha256, wait_public
from tests.helpers.packages import MIB, stored_uuid, uploaded

pytestmark = pytest.mark.portable


async def peer_bytes(node: Node) -> float:
    """Chunk bytes the node has sent to peers (0 before the first)."""
    text = (await node.admin.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ods_bytes_served_total" and sample.labels == {"to": "peers"}:
                return sample.value
    return 0.0


async def test_good_staged_chunks_are_kept_and_only_the_rest_is_fetched(mesh: Mesh) -> None:
    source = await mesh.add("ods-source")
    receiver = await mesh.add("ods-receiver")
    data = os.urandom(5 * MIB + 123)
    await uploaded(source.admin, "resumed.pkg", data)
    uuid = (await source.admin.get("/api/admin/packages/resumed.pkg")).json()["uuid"]

    # What a receiver killed mid-download leaves: chunks 0, 1 and 3 whole,
    # chunk 2 torn, chunk 4 and the 123-byte tail never written.
    staging = receiver.context.files.download(stored_uuid(uuid))
    torn = bytearray(data[2 * MIB : 3 * MIB])
    torn[MIB // 2 :] = bytes(MIB // 2)
    staging.write_bytes(data[: 2 * MIB] + bytes(torn) + data[3 * MIB : 4 * MIB] + bytes(MIB + 123))
    served_before = await peer_bytes(source)

    assert (await receiver.register_with(source)).status_code == 201
    got = await wait_public(receiver, "resumed.pkg")

    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    assert await served_sha256(receiver, "resumed.pkg") == hashlib.sha256(data).hexdigest()
    # Chunks 2, 4 and 5 and nothing else.
    assert await peer_bytes(source) - served_before == 2 * MIB + 123
    assert not staging.exists()


class CorruptingTransport(httpx.AsyncBaseTransport):
    """Flips a byte in the first answer that carries chunk `index` of a run."""

    def __init__(self, inner: MeshTransport, index: int) -> None:
        self.inner = inner
        self.index = index
        self.corrupted = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        start = request.url.params.get("start")
        count = request.url.params.get("count")
        if (
            self.corrupted
            or start is None
            or count is None
            or not int(start) <= self.index < int(start) + int(count)
        ):
            return response
        body = bytearray(await response.aread())
        body[(self.index - int(start)) * MIB + 77] ^= 0xFF
        self.corrupted += 1
        return httpx.Response(
            response.status_code, headers=response.headers, stream=httpx.ByteStream(bytes(body))
        )


async def test_a_chunk_damaged_in_transit_is_fetched_again(mesh: Mesh) -> None:
    source = await mesh.add("ods-source")
    receiver = await mesh.add("ods-receiver")
    corrupting = CorruptingTransport(mesh.transport, index=3)
    await receiver.context.http.aclose()
    receiver.context.http = httpx.AsyncClient(transport=corrupting, timeout=10.0)
    data = os.urandom(6 * MIB)
    await uploaded(source.admin, "damaged.pkg", data)
    served_before = await peer_bytes(source)

    assert (await receiver.register_with(source)).status_code == 201
    got = await wait_public(receiver, "damaged.pkg")

    assert corrupting.corrupted == 1
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    assert await served_sha256(receiver, "damaged.pkg") == hashlib.sha256(data).hexdigest()
    # The file once, and the damaged chunk a second time.
    assert await peer_bytes(source) - served_before == 7 * MIB
    events = (await receiver.admin.get("/api/admin/events")).json()["items"]
    assert not any(event["kind"] == "package.failed" for event in events)


async def test_runs_on_parallel_connections_are_checked_in_file_order(mesh: Mesh) -> None:
    """Two connections: the later run lands first and waits for the file digests."""
    source = await mesh.add("ods-source")
    receiver = await mesh.add("ods-receiver", fetch_parallel_chunks=2)
    corrupting = CorruptingTransport(mesh.transport, index=5)
    await receiver.context.http.aclose()
    receiver.context.http = httpx.AsyncClient(transport=corrupting, timeout=10.0)
    size = (RUN_CHUNKS + 4) * MIB + 999
    data = os.urandom(size)
    await uploaded(source.admin, "parallel.pkg", data)
    served_before = await peer_bytes(source)

    assert (await receiver.register_with(source)).status_code == 201
    got = await wait_public(receiver, "parallel.pkg", within=60)

    assert corrupting.corrupted == 1
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    assert got["sha1"] == hashlib.sha1(data, usedforsecurity=False).hexdigest()
    assert await served_sha256(receiver, "parallel.pkg") == hashlib.sha256(data).hexdigest()
    assert await peer_bytes(source) - served_before == size + MIB


def test_staging_writes_land_in_place_aligned_or_not(tmp_path: Path) -> None:
    path = tmp_path / "staging"
    data = os.urandom(3 * MIB + 5000)
    path.write_bytes(bytes(len(data)))
    staging = StagingFile(path)
    try:
        # Whole aligned pieces (direct where the filesystem allows), then an
        # unaligned tail and an unaligned middle piece (through the cache).
        pieces = [(0, MIB), (2 * MIB, 3 * MIB), (3 * MIB, len(data)), (MIB, MIB + 4097)]
        pieces.append((MIB + 4097, 2 * MIB))
        for start, end in pieces:
            staging.write(memoryview(aligned(data[start:end])), start)
        staging.sync()
        assert staging.read(MIB, 10) == data[MIB : MIB + 10]
    finally:
        staging.close()
    assert path.read_bytes() == data


def aligned(data: bytes) -> memoryview:
    """The bytes in page-aligned memory, as direct writes need."""
    buffer = mmap.mmap(-1, max(len(data), 1))
    buffer[: len(data)] = data
    return memoryview(buffer)[: len(data)]


def test_staging_falls_back_to_cached_writes_where_direct_ones_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform, "IN_USE", platform.detect())  # even in the portable pass
    path = tmp_path / "staging"
    data = os.urandom(2 * MIB)
    path.write_bytes(bytes(len(data)))
    staging = StagingFile(path)
    direct = staging.direct_fd
    assert direct is not None, f"{tmp_path} should take O_DIRECT opens, as ext4 and tmpfs do"
    real_pwrite = os.pwrite

    def pwrite(fd: int, buffer: memoryview, offset: int) -> int:
        if fd == direct:
            # What a filesystem that opens with O_DIRECT but cannot write that way says.
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, buffer, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    try:
        staging.write(aligned(data[:MIB]), 0)
        staging.write(aligned(data[MIB:]), MIB)
        assert staging.direct_fd is None
        staging.sync()
    finally:
        staging.close()
    assert path.read_bytes() == data
