"""TCP proxies on loopback that misbehave the way a peer's link can.

`StallingProxy` stands for a link that goes quiet in the middle of a
transfer: the connection stays open and nothing more arrives (until the test
resumes it). `DripProxy`
stands for a peer that keeps its transfers alive with a trickle: chunk-run
bodies pass a byte at a time, everything else at full speed. `ThrottledProxy`
stands for a slow but steady link: chunk-run bodies pass at a fixed rate.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

from tests.helpers.processes.serve import free_port

HEAD_END = b"\r\n\r\n"


class Proxy:
    """Passes each connection on to `target_port`; subclasses shape the answers."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Proxy:
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
        first_request: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        tasks = [
            asyncio.create_task(self._requests(client_in, server_out, first_request)),
            asyncio.create_task(self._answers(server_in, client_out, first_request)),
        ]
        self._tasks.update(tasks)
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
            self._tasks.discard(task)
        for writer in (client_out, server_out):
            writer.close()

    async def _requests(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        first_request: asyncio.Future[bytes],
    ) -> None:
        """Passes the requests on as they come; `first_request` gets the first one's head."""
        head = b""
        with suppress(ConnectionError):
            while data := await reader.read(65536):
                if not first_request.done():
                    head += data
                    if HEAD_END in head:
                        first_request.set_result(head.partition(HEAD_END)[0])
                writer.write(data)
                await writer.drain()

    async def _answers(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        first_request: asyncio.Future[bytes],
    ) -> None:
        with suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()


class StallingProxy(Proxy):
    """Stops passing answers on after `stall_after` bytes, while `stalling`."""

    def __init__(self, target_port: int, stall_after: int) -> None:
        super().__init__(target_port)
        self.stall_after = stall_after
        self.stalling = True
        self.stalled = asyncio.Event()
        self._resumed = asyncio.Event()

    def resume(self) -> None:
        """Pass the stalled answers on after all, and stall no more."""
        self.stalling = False
        self._resumed.set()

    async def __aenter__(self) -> StallingProxy:
        await super().__aenter__()
        return self

    async def _answers(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        first_request: asyncio.Future[bytes],
    ) -> None:
        passed = 0
        with suppress(ConnectionError):
            while data := await reader.read(65536):
                if self.stalling and passed + len(data) > self.stall_after:
                    writer.write(data[: self.stall_after - passed])
                    await writer.drain()
                    self.stalled.set()
                    await self._resumed.wait()
                    data = data[self.stall_after - passed :]
                    passed = self.stall_after
                passed += len(data)
                writer.write(data)
                await writer.drain()


class DripProxy(Proxy):
    """Passes chunk-run answers' heads at once and their bodies a byte every `seconds_per_byte`.

    Chunk runs have connections of their own (`PeerConnection`), so a
    connection whose first request asks for chunks is dripped from its first
    answer's body on; every other connection passes at full speed.
    """

    def __init__(self, target_port: int, seconds_per_byte: float) -> None:
        super().__init__(target_port)
        self.seconds_per_byte = seconds_per_byte
        self.dripping = 0  # chunk-run connections being dripped now
        self.most_dripping = 0  # the most at once
        self.dripped = 0  # chunk-run connections so far

    async def __aenter__(self) -> DripProxy:
        await super().__aenter__()
        return self

    async def _answers(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        first_request: asyncio.Future[bytes],
    ) -> None:
        request_line = (await first_request).partition(b"\r\n")[0]
        if b"/chunks?" not in request_line:
            await super()._answers(reader, writer, first_request)
            return
        self.dripped += 1
        self.dripping += 1
        self.most_dripping = max(self.most_dripping, self.dripping)
        try:
            with suppress(ConnectionError):
                await self._drip(reader, writer)
        finally:
            self.dripping -= 1

    async def _drip(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pending = b""
        while HEAD_END not in pending:
            data = await reader.read(65536)
            if not data:
                return
            pending += data
        head, _, body = pending.partition(HEAD_END)
        writer.write(head + HEAD_END)
        await writer.drain()
        left = bytearray(body)
        while True:
            if not left:
                data = await reader.read(65536)
                if not data:
                    return
                left += data
            await asyncio.sleep(self.seconds_per_byte)
            writer.write(bytes(left[:1]))
            del left[:1]
            await writer.drain()


class ThrottledProxy(Proxy):
    """Passes chunk-run answers at `bytes_per_second`, everything else at full speed;
    counts the chunk-run bytes it passed (`passed`)."""

    def __init__(self, target_port: int, bytes_per_second: int) -> None:
        super().__init__(target_port)
        self.bytes_per_second = bytes_per_second
        self.passed = 0

    async def __aenter__(self) -> ThrottledProxy:
        await super().__aenter__()
        return self

    async def _answers(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        first_request: asyncio.Future[bytes],
    ) -> None:
        request_line = (await first_request).partition(b"\r\n")[0]
        if b"/chunks?" not in request_line:
            await super()._answers(reader, writer, first_request)
            return
        step = max(1, self.bytes_per_second // 20)
        with suppress(ConnectionError):
            while data := await reader.read(step):
                writer.write(data)
                await writer.drain()
                self.passed += len(data)
                await asyncio.sleep(len(data) / self.bytes_per_second)
