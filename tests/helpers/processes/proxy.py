"""A TCP proxy on loopback that can stall: it stops passing a server's answers on.

Stands for a peer whose link goes quiet in the middle of a transfer: the
connection stays open and nothing more arrives.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

from tests.helpers.processes.serve import free_port


class StallingProxy:
    def __init__(self, target_port: int, stall_after: int) -> None:
        self.target_port = target_port
        self.stall_after = stall_after
        self.port = free_port()
        self.stalling = True
        self.stalled = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> StallingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        tasks = [
            asyncio.create_task(self._pipe(client_in, server_out, answers=False)),
            asyncio.create_task(self._pipe(server_in, client_out, answers=True)),
        ]
        self._tasks.update(tasks)
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
            self._tasks.discard(task)
        for writer in (client_out, server_out):
            writer.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, answers: bool
    ) -> None:
        passed = 0
        with suppress(ConnectionError):
            while data := await reader.read(65536):
                if answers and self.stalling and passed + len(data) > self.stall_after:
                    writer.write(data[: self.stall_after - passed])
                    self.stalled.set()
                    await asyncio.Event().wait()
                passed += len(data)
                writer.write(data)
                await writer.drain()
