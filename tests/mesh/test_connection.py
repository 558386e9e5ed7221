"""PeerConnection: chunk runs over a hand-written HTTP/1.1 connection to a scripted socket peer."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import httpx
import pytest

import ods
from ods.core import platform
from ods.core.platform import round_trip_seconds
from ods.mesh.protocol.client import (
    ChunkTooLarge,
    PeerRefused,
    PeerUnreachable,
    describe_http_error,
)
from ods.mesh.protocol.connection import (
    CONNECT_SECONDS,
    NEAR_BUFFER,
    PeerConnection,
    limit_near_buffer,
)
from tests.helpers.tls import self_signed_certificate

pytestmark = pytest.mark.portable

STALL = 0.5  # the client's stall_seconds
WAIT = 5.0  # the longest any test waits for something that should come at once
TARGET = "/api/ods/packages/abc/chunks?start=2&count=3"

Handler = Callable[["Peer", socket.socket, int], None]
"""What the peer does with one accepted connection: (peer, connection, its number from 1)."""


class Peer:
    """A server on 127.0.0.1 that hands each accepted connection to `handler` in a thread."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None) -> None:
        self.handler = handler
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.02)
        self.port: int = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.changed = threading.Condition()
        self.accepted = 0  # connections accepted
        self.finished = 0  # connections the handler is done with (and closed)
        self.heads: list[bytes] = []  # every request head received, in order
        self.errors: list[OSError] = []
        self.live: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(WAIT)
            with self.changed:
                self.accepted += 1
                self.live.append(conn)
                self.changed.notify_all()
                number = self.accepted
            thread = threading.Thread(target=self._serve, args=(conn, number), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
                with self.changed:
                    self.live.append(conn)
            self.handler(self, conn, number)
        except OSError as exc:
            with self.changed:
                self.errors.append(exc)
        finally:
            conn.close()
            with self.changed:
                self.finished += 1
                self.changed.notify_all()

    def next_request(self, conn: socket.socket) -> int | None:
        """Read a request head: its number among all the peer received (from 0); None at EOF."""
        head = b""
        while b"\r\n\r\n" not in head:
            part = conn.recv(65536)
            if not part:
                return None
            head += part
        with self.changed:
            self.heads.append(head)
            self.changed.notify_all()
            return len(self.heads) - 1

    def idle(self) -> None:
        """Send nothing more until the test ends."""
        self.stopping.wait(WAIT)

    def wait_until(self, condition: Callable[[], bool]) -> None:
        with self.changed:
            assert self.changed.wait_for(condition, WAIT)

    def stop(self) -> None:
        self.stopping.set()
        self.acceptor.join(WAIT)
        self.listener.close()
        with self.changed:
            live = list(self.live)
        for conn in live:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(WAIT)
        assert not any(thread.is_alive() for thread in [self.acceptor, *self.threads])


class Serve(Protocol):
    def __call__(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> Peer: ...


class Connect(Protocol):
    def __call__(
        self,
        url: str,
        *,
        context: ssl.SSLContext | None = None,
        stall: float = STALL,
        min_rate: int = 0,
        head: float | None = None,
    ) -> PeerConnection: ...


@pytest.fixture
def serve() -> Iterator[Serve]:
    peers: list[Peer] = []

    def start(handler: Handler, *, tls: ssl.SSLContext | None = None) -> Peer:
        peer = Peer(handler, tls)
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.stop()


@pytest.fixture
def connect() -> Iterator[Connect]:
    made: list[PeerConnection] = []

    def make(
        url: str,
        *,
        context: ssl.SSLContext | None = None,
        stall: float = STALL,
        min_rate: int = 0,
        head: float | None = None,
    ) -> PeerConnection:
        connection = PeerConnection(
            url,
            name="peer-a",
            ssl_context=context or ssl.create_default_context(),
            stall_seconds=stall,
            min_rate=min_rate,
            head_seconds=head,
        )
        made.append(connection)
        return connection

    yield make
    for connection in made:
        connection.close()


def answer(body: bytes, *, status: str = "200 OK", fields: str = "", version: str = "1.1") -> bytes:
    return f"HTTP/{version} {status}\r\nContent-Length: {len(body)}\r\n{fields}\r\n".encode() + body


def serving(*bodies: bytes, fields: str = "", version: str = "1.1") -> Handler:
    """Answers the n-th request it receives, on any connection, with bodies[n]; keeps alive."""

    def handler(peer: Peer, conn: socket.socket, number: int) -> None:
        while (index := peer.next_request(conn)) is not None:
            conn.sendall(answer(bodies[index], fields=fields, version=version))

    return handler


def sending(raw: bytes, *, then_idle: bool = False) -> Handler:
    """Reads a request, sends `raw` as it is, then closes (or first idles until the test ends)."""

    def handler(peer: Peer, conn: socket.socket, number: int) -> None:
        if peer.next_request(conn) is not None:
            conn.sendall(raw)
            if then_idle:
                peer.idle()

    return handler


def dripping(raw: bytes, *, fast: int, every: float, step: int = 1) -> Handler:
    """Reads a request, sends the first `fast` bytes of `raw` at once, then `step` bytes
    every `every` seconds, until `raw` is sent or the test ends; then idles."""

    def handler(peer: Peer, conn: socket.socket, number: int) -> None:
        if peer.next_request(conn) is None:
            return
        conn.sendall(raw[:fast])
        for start in range(fast, len(raw), step):
            if peer.stopping.wait(every):
                return
            conn.sendall(raw[start : start + step])
        peer.idle()

    return handler


def read_all(connection: PeerConnection, length: int, piece: int = 65536) -> bytes:
    """The whole body, read `piece` bytes at most at a time; checks that it then ends."""
    data = bytearray()
    buffer = memoryview(bytearray(piece))
    while len(data) < length:
        count = connection.read_into(buffer)
        assert count > 0
        data += buffer[:count]
    assert connection.read_into(buffer) == 0
    return bytes(data)


def read_on(connection: PeerConnection, got: bytearray) -> None:
    """Reads into `got` until read_into raises (or, wrongly, the body ends)."""
    buffer = memoryview(bytearray(8192))
    while count := connection.read_into(buffer):
        got += buffer[:count]


def in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    """Runs `work` in a thread; the list gets what it raised."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, raised


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    return self_signed_certificate(tmp_path)


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


# The request


def test_the_request_names_the_target_and_host_and_passes_the_given_headers(
    serve: Serve, connect: Connect
) -> None:
    peer = serve(serving(b"x" * 10))
    connection = connect(peer.url)
    signed = {"X-ODS-Sender": "ods-b", "X-ODS-Signature": "v1=c2lnbmF0dXJl"}

    connection.request(peer.url + TARGET, signed, 10)

    request_line, *lines = peer.heads[0].decode("latin-1").removesuffix("\r\n\r\n").split("\r\n")
    assert request_line == f"GET {TARGET} HTTP/1.1"
    fields = dict(line.split(": ", 1) for line in lines)
    assert fields == {
        "Host": f"127.0.0.1:{peer.port}",
        "User-Agent": f"ODS/{ods.__version__}",
        "Accept-Encoding": "identity",
        **signed,
    }


def test_a_url_on_another_host_is_not_sent(serve: Serve, connect: Connect) -> None:
    peer = serve(serving(b"x"))
    connection = connect(peer.url)
    with pytest.raises(ValueError, match="is not on"):
        connection.request(f"http://localhost:{peer.port}{TARGET}", {}, 1)
    assert peer.accepted == 0


def test_a_base_url_that_is_not_http_is_unreachable() -> None:
    with pytest.raises(PeerUnreachable, match="not an http or https URL"):
        PeerConnection(
            "ftp://127.0.0.1/",
            name="x",
            ssl_context=ssl.create_default_context(),
            stall_seconds=1,
            min_rate=0,
        )


# Bodies


def test_a_body_is_read_in_full_as_sent(serve: Serve, connect: Connect) -> None:
    body = os.urandom(3 * 1024 * 1024 + 17)
    peer = serve(serving(body))
    connection = connect(peer.url)

    connection.request(peer.url + TARGET, {}, len(body))

    assert read_all(connection, len(body)) == body


def test_body_bytes_that_come_in_the_heads_packet_are_read_first(
    serve: Serve, connect: Connect
) -> None:
    body = os.urandom(1000)
    peer = serve(sending(answer(body)))  # head and body in one send
    connection = connect(peer.url)

    connection.request(peer.url + TARGET, {}, len(body))

    assert connection.early  # the case under test: the body began in the head's recv
    assert read_all(connection, len(body), piece=300) == body


# Keep-alive


def test_two_runs_share_one_connection(serve: Serve, connect: Connect) -> None:
    first, second = os.urandom(70_000), os.urandom(5000)
    peer = serve(serving(first, second))
    connection = connect(peer.url)

    connection.request(peer.url + TARGET, {}, len(first))
    assert read_all(connection, len(first)) == first
    connection.request(peer.url + TARGET, {}, len(second))
    assert read_all(connection, len(second)) == second

    assert peer.accepted == 1
    assert len(peer.heads) == 2


def test_a_connection_the_peer_closed_while_idle_is_replaced(
    serve: Serve, connect: Connect
) -> None:
    first, second = os.urandom(2000), os.urandom(3000)

    def once_per_connection(peer: Peer, conn: socket.socket, number: int) -> None:
        index = peer.next_request(conn)
        if index is not None:
            conn.sendall(answer([first, second][index]))

    peer = serve(once_per_connection)
    connection = connect(peer.url)
    connection.request(peer.url + TARGET, {}, len(first))
    assert read_all(connection, len(first)) == first
    peer.wait_until(lambda: peer.finished == 1)  # the idle connection is closed

    connection.request(peer.url + TARGET, {}, len(second))

    assert read_all(connection, len(second)) == second
    assert peer.accepted == 2


def test_only_one_new_connection_is_tried_after_an_idle_close(
    serve: Serve, connect: Connect
) -> None:
    body = os.urandom(2000)

    def first_answers_then_none_do(peer: Peer, conn: socket.socket, number: int) -> None:
        if number == 1 and peer.next_request(conn) is not None:
            conn.sendall(answer(body))
        # and every connection closes

    peer = serve(first_answers_then_none_do)
    connection = connect(peer.url)
    connection.request(peer.url + TARGET, {}, len(body))
    assert read_all(connection, len(body)) == body
    peer.wait_until(lambda: peer.finished == 1)

    with pytest.raises(PeerUnreachable, match="is unreachable"):
        connection.request(peer.url + TARGET, {}, len(body))
    assert peer.accepted == 2


def test_a_new_connection_that_closes_before_answering_is_not_retried(
    serve: Serve, connect: Connect
) -> None:
    peer = serve(sending(b""))
    connection = connect(peer.url)

    with pytest.raises(PeerUnreachable, match="closed before an answer"):
        connection.request(peer.url + TARGET, {}, 10)
    assert peer.accepted == 1


@pytest.mark.parametrize(
    ("version", "fields"),
    [("1.1", "Connection: close\r\n"), ("1.1", "connection: Close\r\n"), ("1.0", "")],
)
def test_an_answer_that_ends_keep_alive_is_followed_by_a_new_connection(
    serve: Serve, connect: Connect, version: str, fields: str
) -> None:
    first, second = os.urandom(1000), os.urandom(1000)
    # The peer would serve a second request on the same connection: the client must not ask.
    peer = serve(serving(first, second, fields=fields, version=version))
    connection = connect(peer.url)

    connection.request(peer.url + TARGET, {}, len(first))
    assert read_all(connection, len(first)) == first
    connection.request(peer.url + TARGET, {}, len(second))
    assert read_all(connection, len(second)) == second

    assert peer.accepted == 2


def test_a_half_read_answer_is_not_reused(serve: Serve, connect: Connect) -> None:
    first, second = os.urandom(200_000), os.urandom(1000)
    peer = serve(serving(first, second))
    connection = connect(peer.url)

    connection.request(peer.url + TARGET, {}, len(first))
    assert connection.read_into(memoryview(bytearray(100))) == 100
    connection.request(peer.url + TARGET, {}, len(second))

    assert read_all(connection, len(second)) == second
    assert peer.accepted == 2


# Answers that are refused or wrong


def test_a_refusal_carries_the_peers_message(serve: Serve, connect: Connect) -> None:
    error = json.dumps({"error": "signature_rejected", "message": "bad signature"}).encode()
    peer = serve(sending(answer(error, status="401 Unauthorized"), then_idle=True))
    connection = connect(peer.url)

    with pytest.raises(PeerRefused) as refused:
        connection.request(peer.url + TARGET, {}, 100)
    assert str(refused.value) == f"peer-a refused {TARGET}: HTTP 401: bad signature"


def test_a_refusal_that_is_not_an_ods_error_is_named_by_its_status_alone(
    serve: Serve, connect: Connect
) -> None:
    peer = serve(sending(answer(b"upstream gone", status="502 Bad Gateway"), then_idle=True))
    connection = connect(peer.url)

    with pytest.raises(PeerRefused) as refused:
        connection.request(peer.url + TARGET, {}, 100)
    assert str(refused.value).endswith("HTTP 502 (not an ODS error answer)")
    assert "upstream gone" not in str(refused.value)


def test_a_chunked_refusal_is_named_by_its_status(serve: Serve, connect: Connect) -> None:
    raw = b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nproxy\r\n0\r\n\r\n"
    peer = serve(sending(raw, then_idle=True))
    connection = connect(peer.url)

    with pytest.raises(PeerRefused, match=r"refused \S+: HTTP 502 \(not an ODS error answer\)$"):
        connection.request(peer.url + TARGET, {}, 100)


def test_an_answer_longer_than_asked_is_too_large(serve: Serve, connect: Connect) -> None:
    peer = serve(sending(answer(bytes(200)), then_idle=True))
    connection = connect(peer.url)

    with pytest.raises(
        ChunkTooLarge, match=r"^/api/ods/packages/abc/chunks\?\S* declared 200 bytes, not 100$"
    ):
        connection.request(peer.url + TARGET, {}, 100)


def test_an_answer_shorter_than_asked_is_unreachable(serve: Serve, connect: Connect) -> None:
    peer = serve(sending(answer(bytes(50)), then_idle=True))
    connection = connect(peer.url)

    with pytest.raises(PeerUnreachable, match=r"^peer-a offered 50 of 100 bytes$"):
        connection.request(peer.url + TARGET, {}, 100)


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n"
        + bytes(100)
        + b"\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"64\r\n"
        + bytes(100)
        + b"\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + bytes(100),
    ],
    ids=["chunked", "chunked-and-length", "close-delimited"],
)
def test_an_answer_without_a_plain_content_length_is_unreachable(
    serve: Serve, connect: Connect, raw: bytes
) -> None:
    peer = serve(sending(raw, then_idle=True))
    connection = connect(peer.url)

    with pytest.raises(PeerUnreachable, match="without a Content-Length"):
        connection.request(peer.url + TARGET, {}, 100)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\r\n", "not an HTTP answer"),
        (b"HTTP/2 200\r\ncontent-length: 10\r\n\r\n" + bytes(10), "not an HTTP answer"),
        (b"HTTP/1.1 OK\r\nContent-Length: 10\r\n\r\n" + bytes(10), "not an HTTP answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n", "closed before an answer"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Padding: yes\r\n" * 5000, "headers are too long"),
    ],
    ids=["ssh-banner", "http2", "no-status-code", "cut-head", "endless-head"],
)
def test_a_non_http_answer_is_unreachable(
    serve: Serve, connect: Connect, raw: bytes, reason: str
) -> None:
    peer = serve(sending(raw))
    connection = connect(peer.url)

    with pytest.raises(PeerUnreachable, match=reason):
        connection.request(peer.url + TARGET, {}, 10)


# A peer that goes away or stalls


def test_a_peer_that_closes_mid_body_is_unreachable(serve: Serve, connect: Connect) -> None:
    body = os.urandom(100_000)
    sent = 40_000
    peer = serve(sending(answer(body)[: -(len(body) - sent)]))
    connection = connect(peer.url)
    connection.request(peer.url + TARGET, {}, len(body))

    got = bytearray()
    with pytest.raises(PeerUnreachable, match="peer-a closed the connection mid-answer"):
        read_on(connection, got)

    assert got == body[:sent]
    assert connection.sock is None  # closed on the way out


def test_a_peer_that_stalls_mid_body_times_out(serve: Serve, connect: Connect) -> None:
    body = os.urandom(10_000)
    peer = serve(sending(answer(body)[:-5000], then_idle=True))
    connection = connect(peer.url)
    connection.request(peer.url + TARGET, {}, len(body))
    buffer = memoryview(bytearray(len(body)))
    got = 0
    while got < 5000:
        got += connection.read_into(buffer[got:])

    started = time.monotonic()
    with pytest.raises(PeerUnreachable, match=f"^{peer.url} is unreachable: timed out$"):
        connection.read_into(buffer[got:])
    waited = time.monotonic() - started

    assert bytes(buffer[:got]) == body[:5000]
    assert STALL * 0.8 <= waited < STALL + 2


def test_a_peer_that_never_answers_times_out(serve: Serve, connect: Connect) -> None:
    peer = serve(sending(b"", then_idle=True))
    connection = connect(peer.url)

    started = time.monotonic()
    with pytest.raises(PeerUnreachable, match="is unreachable: timed out"):
        connection.request(peer.url + TARGET, {}, 10)
    assert time.monotonic() - started < STALL + 2


def test_a_closed_port_is_unreachable(connect: Connect) -> None:
    # Bound but not listening: the port stays ours, and connecting to it is refused.
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}"
        connection = connect(url)
        with pytest.raises(PeerUnreachable, match=f"^{url} is unreachable: cannot connect"):
            connection.request(url + TARGET, {}, 10)


def test_a_peer_that_hangs_up_without_answering_is_said_so() -> None:
    """What a peer going down does to a request under way: its connection closes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"

        def hang_up() -> None:
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.close()

        thread = threading.Thread(target=hang_up)
        thread.start()
        with httpx.Client() as client, pytest.raises(httpx.HTTPError) as caught:
            client.get(url)
        thread.join()
    assert describe_http_error(url, caught.value) == (
        f"{url} is unreachable: the connection closed before it answered"
    )


# A peer that is too slow: the rate floor and the head's deadline

FLOOR = 1024  # bytes per second: far above a drip, far below loopback


def test_a_body_dripped_below_the_floor_is_dropped_naming_the_peer_and_its_rate(
    serve: Serve, connect: Connect
) -> None:
    body = os.urandom(1000)
    head = answer(body)[: -len(body)]
    # A byte every 50 ms: never a stall, 20 bytes/s.
    peer = serve(dripping(answer(body), fast=len(head), every=0.05))
    connection = connect(peer.url, min_rate=FLOOR)
    connection.request(peer.url + TARGET, {}, len(body))

    got = bytearray()
    started = time.monotonic()
    with pytest.raises(PeerUnreachable) as dropped:
        read_on(connection, got)
    waited = time.monotonic() - started

    message = str(dropped.value)
    assert re.fullmatch(
        r"peer-a sent \d+ bytes in 0\.\d s \(\d+\.\d bytes/s\), below the minimum of "
        r"1\.0 KB/s \(ODS_FETCH_MIN_RATE\)",
        message,
    ), message
    assert bytes(got) == body[: len(got)]
    assert 0 < len(got) < 100
    # One window (the stall timeout) of waiting, not the hours a drip could take.
    assert STALL * 0.8 <= waited < STALL + 2
    assert connection.sock is None


def test_without_a_floor_a_dripped_body_is_read_in_full(serve: Serve, connect: Connect) -> None:
    body = os.urandom(30)
    peer = serve(dripping(answer(body), fast=len(answer(body)) - len(body), every=0.05))
    connection = connect(peer.url, min_rate=0)

    connection.request(peer.url + TARGET, {}, len(body))

    assert read_all(connection, len(body)) == body  # over more than two stall timeouts


def test_a_body_above_the_floor_is_read_in_full_over_many_windows(
    serve: Serve, connect: Connect
) -> None:
    body = os.urandom(60_000)
    raw = answer(body)
    # 2000 bytes every 20 ms: about 100 KB/s, for more than one window.
    peer = serve(dripping(raw, fast=len(raw) - len(body), every=0.02, step=2000))
    connection = connect(peer.url, stall=0.2, min_rate=FLOOR)

    connection.request(peer.url + TARGET, {}, len(body))

    assert read_all(connection, len(body)) == body


def test_this_servers_own_slowness_is_not_taken_for_the_peers(
    serve: Serve, connect: Connect
) -> None:
    body = os.urandom(64 * 1024)  # fits in the socket buffers: the peer is done at once
    peer = serve(sending(answer(body), then_idle=True))
    connection = connect(peer.url, stall=0.2, min_rate=10 * 1024 * 1024)
    connection.request(peer.url + TARGET, {}, len(body))
    buffer = memoryview(bytearray(4096))
    got = bytearray()

    # 16 reads a quarter of a second apart: 16 KB/s by the clock on the wall.
    while len(got) < len(body):
        time.sleep(0.25)
        count = connection.read_into(buffer)
        assert count > 0
        got += buffer[:count]

    assert got == body


def test_a_stall_after_a_fast_start_is_reported_as_a_stall(serve: Serve, connect: Connect) -> None:
    body = os.urandom(300_000)
    peer = serve(sending(answer(body)[:-100_000], then_idle=True))
    connection = connect(peer.url, min_rate=FLOOR)
    connection.request(peer.url + TARGET, {}, len(body))

    got = bytearray()
    with pytest.raises(PeerUnreachable, match=f"^{peer.url} is unreachable: timed out$"):
        read_on(connection, got)

    assert bytes(got) == body[:200_000]


def test_a_head_dripped_within_each_stall_is_dropped_at_its_deadline(
    serve: Serve, connect: Connect
) -> None:
    raw = answer(b"x" * 10, fields="X-Padding: " + "p" * 200 + "\r\n")
    # A byte every 50 ms: each read gets one long before the stall timeout.
    peer = serve(dripping(raw, fast=0, every=0.05))
    connection = connect(peer.url, head=1.0)

    started = time.monotonic()
    with pytest.raises(
        PeerUnreachable, match=f"^{peer.url} is unreachable: no whole answer within 1 s$"
    ):
        connection.request(peer.url + TARGET, {}, 10)
    waited = time.monotonic() - started

    assert 0.9 <= waited < 3
    assert connection.sock is None


def test_the_head_deadline_is_the_connect_time_and_one_stall_timeout() -> None:
    connection = PeerConnection(
        "http://127.0.0.1:9",
        name="x",
        ssl_context=ssl.create_default_context(),
        stall_seconds=30,
        min_rate=FLOOR,
    )
    assert connection.head_seconds == CONNECT_SECONDS + 30
    assert connection.window == 30


# abort() from another thread


def abort_a_blocked_read(peer: Peer, connection: PeerConnection) -> None:
    body = os.urandom(10_000)
    connection.request(peer.url + TARGET, {}, len(body))
    thread, raised = in_thread(lambda: read_all(connection, len(body)))
    time.sleep(0.2)  # the reader is blocked in recv by now
    assert thread.is_alive()

    started = time.monotonic()
    connection.abort()
    thread.join(WAIT)

    assert not thread.is_alive()
    assert time.monotonic() - started < 1
    assert len(raised) == 1
    assert isinstance(raised[0], PeerUnreachable)


def test_abort_ends_a_blocked_read_at_once(serve: Serve, connect: Connect) -> None:
    peer = serve(sending(answer(bytes(10_000))[:-5000], then_idle=True))
    connection = connect(peer.url, stall=30)  # only abort() can end the read in time

    abort_a_blocked_read(peer, connection)


def test_abort_ends_a_blocked_read_over_https(
    serve: Serve, connect: Connect, certificate: tuple[Path, Path]
) -> None:
    peer = serve(
        sending(answer(bytes(10_000))[:-5000], then_idle=True), tls=server_tls(certificate)
    )
    trusting = ssl.create_default_context(cafile=certificate[0])
    connection = connect(peer.url, context=trusting, stall=30)

    abort_a_blocked_read(peer, connection)


def test_abort_ends_a_request_waiting_on_a_reused_connection(
    serve: Serve, connect: Connect
) -> None:
    body = os.urandom(1000)

    def answers_only_the_first(peer: Peer, conn: socket.socket, number: int) -> None:
        while (index := peer.next_request(conn)) is not None:
            if index == 0:
                conn.sendall(answer(body))
            else:
                peer.idle()  # the peer is slow to start the next run

    peer = serve(answers_only_the_first)
    connection = connect(peer.url, stall=30)
    connection.request(peer.url + TARGET, {}, len(body))
    assert read_all(connection, len(body)) == body
    thread, raised = in_thread(lambda: connection.request(peer.url + TARGET, {}, len(body)))
    try:
        peer.wait_until(lambda: len(peer.heads) == 2)
        time.sleep(0.1)  # the request is blocked reading the answer's head

        connection.abort()
        thread.join(1)

        # Not asked again on a new connection: an abort is not a peer closing an idle one.
        assert peer.accepted == 1
        assert len(peer.heads) == 2
        assert not thread.is_alive()
        assert len(raised) == 1
        assert isinstance(raised[0], PeerUnreachable)
    finally:
        peer.stop()  # ends a request still waiting, before the connection is closed
        thread.join(WAIT)


def test_abort_without_a_connection_does_nothing(connect: Connect) -> None:
    connection = connect("http://127.0.0.1:9")
    connection.abort()
    assert connection.sock is None


# Receive buffer


def test_a_loopback_connection_gets_the_near_buffer(
    serve: Serve, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform, "IN_USE", platform.detect())  # even in the portable pass
    # Linux doubles the value set, for its bookkeeping, after capping it at rmem_max.
    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    capped = 2 * min(NEAR_BUFFER, rmem_max)
    peer = serve(serving(b"x" * 10))
    with socket.create_connection(("127.0.0.1", peer.port)) as raw:
        assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) != capped
        rtt = round_trip_seconds(raw)
        assert rtt is not None
        assert 0 < rtt < 0.001
        limit_near_buffer(raw)
        assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == capped

    connection = connect(peer.url)
    connection.request(peer.url + TARGET, {}, 10)
    assert connection.sock is not None
    assert connection.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == capped


def test_without_the_kernels_round_trip_a_loopback_connection_keeps_its_buffer(
    serve: Serve, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform, "IN_USE", platform.PORTABLE)
    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    capped = 2 * min(NEAR_BUFFER, rmem_max)
    peer = serve(serving(b"x" * 10))
    connection = connect(peer.url)
    connection.request(peer.url + TARGET, {}, 10)
    assert read_all(connection, 10) == b"x" * 10
    assert connection.sock is not None
    assert round_trip_seconds(connection.sock) is None
    assert connection.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) != capped


def test_a_socket_without_tcp_info_keeps_its_buffer() -> None:
    left, right = socket.socketpair()
    with left, right:
        before = left.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert round_trip_seconds(left) is None
        limit_near_buffer(left)
        assert left.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == before


# https


def test_https_to_a_trusted_certificate_works(
    serve: Serve, connect: Connect, certificate: tuple[Path, Path]
) -> None:
    first, second = os.urandom(300_000), os.urandom(1000)
    peer = serve(serving(first, second), tls=server_tls(certificate))
    trusting = ssl.create_default_context(cafile=certificate[0])
    connection = connect(peer.url, context=trusting)

    connection.request(peer.url + TARGET, {}, len(first))
    assert read_all(connection, len(first)) == first
    connection.request(peer.url + TARGET, {}, len(second))
    assert read_all(connection, len(second)) == second

    assert peer.accepted == 1
    assert peer.heads[0].startswith(f"GET {TARGET} HTTP/1.1\r\n".encode())


def test_https_to_an_untrusted_certificate_is_unreachable(
    serve: Serve, connect: Connect, certificate: tuple[Path, Path]
) -> None:
    peer = serve(serving(b"x" * 10), tls=server_tls(certificate))
    connection = connect(peer.url, context=ssl.create_default_context())

    with pytest.raises(PeerUnreachable, match="certificate verify failed"):
        connection.request(peer.url + TARGET, {}, 10)
    assert peer.heads == []
