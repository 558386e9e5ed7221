"""What a running server or worker holds: settings, database, files, HTTP client, queue.

Built from settings by the app's lifespan (and by `ods worker`), closed with it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

import ods
from ods.accounts.throttle import LoginThrottle
from ods.core.cache import TtlCache
from ods.core.config import Settings
from ods.core.crypto import FieldCipher
from ods.core.db import Database
from ods.core.metrics import Metrics
from ods.jobs.queue import ArqQueue, InProcessQueue, JobQueue
from ods.mesh.protocol.client import PeerLink
from ods.mesh.protocol.connection import PeerConnection, RunConnection
from ods.packages.storage import PackageFiles

HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


@dataclass
class Context:
    settings: Settings
    db: Database
    cipher: FieldCipher
    files: PackageFiles
    throttle: LoginThrottle
    http: httpx.AsyncClient
    metrics: Metrics
    queue: JobQueue = field(init=False)
    iss: str = ""
    # Peer links by iss, and path and size of Public packages by uuid: read on
    # every signed request and every chunk served.
    peer_links: TtlCache[str, PeerLink] = field(default_factory=lambda: TtlCache(5.0))
    chunk_sources: TtlCache[str, tuple[str, int]] = field(default_factory=lambda: TtlCache(60.0))
    last_contacts: dict[int, float] = field(default_factory=dict)
    # Chunk runs are received in these threads, one per connection (made as needed).
    transfer_threads: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(64, thread_name_prefix="ods-fetch")
    )
    ssl_context: ssl.SSLContext = field(default_factory=httpx.create_ssl_context)
    connect: Callable[[PeerLink], RunConnection] = field(init=False)

    def __post_init__(self) -> None:
        self.connect = self.peer_connection

    def peer_connection(self, link: PeerLink) -> RunConnection:
        """A connection for chunk runs from `link`."""
        return PeerConnection(
            link.url,
            name=link.name or link.url,
            ssl_context=self.ssl_context,
            stall_seconds=self.settings.fetch_stall_seconds,
        )

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics | None = None) -> Context:
        """A context; its queue runs jobs in-process unless REDIS_URL hands them to workers."""
        assert settings.database_url is not None
        # Peers are reached directly (no proxy from the environment); the CA
        # bundle is certifi's, or SSL_CERT_FILE / SSL_CERT_DIR.
        ssl_context = httpx.create_ssl_context()
        context = cls(
            settings=settings,
            db=Database(settings.database_url),
            cipher=FieldCipher(settings.database_key_bytes),
            files=PackageFiles(settings.share_dir, settings.staging_dir),
            throttle=LoginThrottle(settings.login_max_failures, settings.login_lockout_seconds),
            http=httpx.AsyncClient(
                timeout=HTTP_TIMEOUT,
                headers={"User-Agent": f"ODS/{ods.__version__}"},
                follow_redirects=False,
                transport=httpx.AsyncHTTPTransport(verify=ssl_context),
            ),
            metrics=metrics or Metrics(),
            ssl_context=ssl_context,
        )
        if settings.redis_url:
            context.queue = ArqQueue(settings.redis_url)
        else:
            from ods.jobs.runner import run_job

            async def run(key: str) -> None:
                await run_job(context, key)

            context.queue = InProcessQueue(run, settings.job_concurrency)
        context.metrics.watch_queue(context.queue)
        return context

    async def close(self) -> None:
        await self.queue.close()
        await self.http.aclose()
        self.transfer_threads.shutdown(wait=False, cancel_futures=True)
        await self.db.dispose()
