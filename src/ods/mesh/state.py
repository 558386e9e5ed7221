"""The mesh's state in one process: caches on the hot paths, last contacts, transfer threads.

One `MeshState` per context (`mesh_state(context)`), closed with it. A site
may run several processes on one database and data dir, so nothing here may
outlive a change another process makes: a chunk source is checked against the
file on disk before it is used, and peer links are not kept at all (each
signed request reads its peer's row, so a peer forgotten or changed through
one process is refused or seen as changed by every process at once).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

from ods.core.cache import TtlCache
from ods.mesh.protocol.client import PeerLink
from ods.mesh.protocol.connection import PeerConnection, RunConnection

if TYPE_CHECKING:
    from ods.core.context import Context

TRANSFER_THREADS = 64


@dataclass(frozen=True)
class ChunkSource:
    """Where a Public package's chunks are read from: its published file, as it was seen."""

    filename: str
    size: int
    # The file's identity when the entry was made: a replaced or re-published file differs.
    inode: int
    mtime_ns: int


@dataclass
class MeshState:
    # Public packages by uuid: read for every run of chunks served.
    chunk_sources: TtlCache[str, ChunkSource] = field(default_factory=lambda: TtlCache(60.0))
    # When this process last wrote each peer's last contact: spares a write per request.
    last_contacts: dict[int, float] = field(default_factory=dict)
    # Statements refused lately, so a peer repeating one does not flood the event log.
    refusals: dict[tuple[str, str, str, str], float] = field(default_factory=dict)
    # Chunk runs are received in these threads, one per connection (made as needed).
    transfer_threads: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(TRANSFER_THREADS, thread_name_prefix="ods-fetch")
    )
    # How a fetch connects to a peer for chunk runs; tests put an in-process transport here.
    connect: Callable[[PeerLink], RunConnection] | None = None

    @classmethod
    def for_context(cls, context: Context) -> Self:
        state = cls()

        def connect(link: PeerLink) -> RunConnection:
            return PeerConnection(
                link.url,
                name=link.name or link.url,
                ssl_context=context.ssl_context,
                stall_seconds=context.settings.fetch_stall_seconds,
                min_rate=context.settings.fetch_min_rate,
            )

        state.connect = connect
        return state

    def forget_links(self) -> None:
        """Peers changed here: write their next contact whatever the last was."""
        self.last_contacts.clear()

    def close(self) -> None:
        self.transfer_threads.shutdown(wait=False, cancel_futures=True)


def mesh_state(context: Context) -> MeshState:
    return context.part(MeshState)
