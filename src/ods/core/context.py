"""What a running server or worker shares: settings, database, files, HTTP client, queue, metrics.

`ods.lifecycle` builds a context from settings, for `ods serve` and `ods
worker` alike, and closes it with them. Features keep the state they own
in this process (caches, progress of downloads, counters) as parts of the
context: `context.part(Kind)` makes one on first use and the context
closes it at the end, so nothing lives in module globals.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, TypeVar, cast

import httpx

import ods
from ods.core.config import Settings
from ods.core.crypto import FieldCipher
from ods.core.db import Database
from ods.core.metrics import Metrics
from ods.core.ownership import Owner
from ods.core.storage import PackageFiles

HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class JobQueue(Protocol):
    """Where job keys go to be run: in this process, or on Redis for `ods worker`."""

    async def enqueue(self, key: str, attempt: int, defer: float = 0.0) -> None: ...

    async def close(self) -> None: ...


class Part(Protocol):
    """State a feature keeps per context."""

    @classmethod
    def for_context(cls, context: Context) -> Self: ...

    def close(self) -> None: ...


P = TypeVar("P", bound=Part)


@dataclass
class Context:
    settings: Settings
    db: Database
    cipher: FieldCipher
    files: PackageFiles
    http: httpx.AsyncClient
    metrics: Metrics
    # The trust store for peers over https: certifi's, or SSL_CERT_FILE / SSL_CERT_DIR.
    ssl_context: ssl.SSLContext
    # This process, as the owner of the uploads and jobs it runs (`ods.jobs.owners`).
    owner: Owner
    queue: JobQueue = field(init=False)
    iss: str = ""
    _parts: dict[type[Any], Any] = field(default_factory=dict)
    # Run by `close()` once the queue is closed, before the database is: to hand work back.
    closing: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics | None = None) -> Context:
        """A context without its queue; `ods.lifecycle` adds the queue."""
        assert settings.database_url is not None
        ssl_context = httpx.create_ssl_context()
        owner = Owner.of_this_process()
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            cipher=FieldCipher(settings.database_key_bytes),
            files=PackageFiles(
                settings.share_dir, settings.staging_dir, owner.id, settings.versions_dir
            ),
            # Peers are reached directly: no proxy from the environment.
            http=httpx.AsyncClient(
                timeout=HTTP_TIMEOUT,
                headers={"User-Agent": f"ODS/{ods.__version__}"},
                follow_redirects=False,
                transport=httpx.AsyncHTTPTransport(verify=ssl_context),
            ),
            metrics=metrics or Metrics(),
            ssl_context=ssl_context,
            owner=owner,
        )

    def part(self, kind: type[P]) -> P:
        """This context's one `kind`, made on first use."""
        found = self._parts.get(kind)
        if found is None:
            found = self._parts[kind] = kind.for_context(self)
        return cast(P, found)

    async def close(self) -> None:
        await self.queue.close()
        for hook in self.closing:
            await hook()
        self.closing.clear()
        await self.http.aclose()
        for part in self._parts.values():
            part.close()
        self._parts.clear()
        await self.db.dispose()
