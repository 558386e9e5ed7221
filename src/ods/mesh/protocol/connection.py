"""A plain HTTP/1.1 connection to a peer for chunk runs, read from a worker thread.

Chunk bytes are the bulk of what a server receives, so they skip the
general HTTP client: the request is written by hand, the answer's head is
parsed, and the body is received straight into the caller's buffer with
`recv_into`, in a thread that holds no lock while it waits. One connection
serves every run of a fetch (keep-alive), so a long-distance link keeps its
window open between runs. Peers are reached directly, like every other peer
call; `https` URLs are verified with the same trust as the rest of ODS.

A peer that is slow on purpose or by fault must not hold a fetch, and the
job slot it runs in, for long: a request's head has a deadline, a read waits
at most the stall timeout, and a body must keep coming at a minimum rate.
"""

from __future__ import annotations

import contextlib
import math
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

import ods
from ods.core import platform
from ods.core.humanize import size_hr
from ods.mesh.protocol.client import ChunkTooLarge, PeerRefused, PeerUnreachable, refusal_text

CONNECT_SECONDS = 10.0
MIN_TIMEOUT = 0.001  # a socket timeout of 0 would mean non-blocking
HEAD_LIMIT = 64 * 1024  # status line and headers
ERROR_BODY_LIMIT = 64 * 1024  # a refusal's body, read for its message
NEAR_RTT_SECONDS = 0.001
NEAR_BUFFER = 512 * 1024  # Linux doubles it for its bookkeeping


def limit_near_buffer(sock: socket.socket) -> None:
    """Cap the receive buffer of a connection to a near peer (LAN, same host).

    Left alone, the kernel grows a receive buffer to many MiB when the
    sender is faster than this server hashes; all of it is lost, and fetched
    again, if this server is killed. A near peer needs little buffer for
    full speed (bandwidth times a round trip under a millisecond), so it gets
    NEAR_BUFFER; a distant peer keeps the kernel's sizing, which a long
    round trip needs. Where the kernel does not say the round trip, every
    peer keeps the kernel's sizing.
    """
    rtt = platform.round_trip_seconds(sock)
    if rtt is not None and rtt < NEAR_RTT_SECONDS:
        platform.set_receive_buffer(sock, NEAR_BUFFER)


def rate_hr(rate: float) -> str:
    """`0.93` → `"0.9 bytes/s"`, `65536` → `"64.0 KB/s"`."""
    return f"{rate:.1f} bytes/s" if rate < 1024 else f"{size_hr(int(rate))}/s"


class HeadTimeout(TimeoutError):
    """The answer's head was not whole by the request's deadline."""


class RunConnection(Protocol):
    """One connection to a peer that answers chunk-run requests, used by one thread."""

    def request(self, url: str, headers: Mapping[str, str], length: int) -> None:
        """Send a GET for a body of exactly `length` bytes; raise if it is refused."""

    def read_into(self, view: memoryview) -> int:
        """Body bytes into `view`; 0 once the body is read."""

    def abort(self) -> None:
        """From any thread: make a blocked read return or fail at once."""

    def close(self) -> None: ...


class PeerConnection:
    """An HTTP/1.1 connection to one peer's base URL, for GETs with a known body length.

    Three limits, each a PeerUnreachable when broken:

    - a request's head (connect, TLS, the request, the answer's status and
      headers) is done within `head_seconds` (by default CONNECT_SECONDS plus
      `stall_seconds`), however the peer spaces its bytes;
    - a read of the body waits at most `stall_seconds` for a byte;
    - the body comes at `min_rate` bytes per second or more (0: no floor),
      measured over each `stall_seconds` spent waiting for it. Only the time
      this thread waits in `recv` counts, so this server's own slowness (disk,
      hashing, a full buffer pool) is never taken for the peer's. Without the
      floor, a peer sending a byte just inside every stall timeout kept a fetch
      going for hours.
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        ssl_context: ssl.SSLContext,
        stall_seconds: float,
        min_rate: int,
        head_seconds: float | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PeerUnreachable(f"{base_url} is not an http or https URL")
        self.base_url = base_url
        self.name = name
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.netloc = parts.netloc
        self.ssl_context = ssl_context
        self.stall_seconds = stall_seconds
        self.min_rate = min_rate
        # The floor's window is the stall timeout: a shorter one would abandon a
        # peer for a silence the stall timeout allows.
        self.window = stall_seconds if min_rate > 0 else math.inf
        self.head_seconds = (
            CONNECT_SECONDS + stall_seconds if head_seconds is None else head_seconds
        )
        self.window_waited = 0.0  # seconds waited for body bytes in this window
        self.window_bytes = 0  # body bytes received in this window
        self.sock: socket.socket | None = None
        self.early = b""  # body bytes that came with the head
        self.remaining = 0  # body bytes not yet read
        self.reusable = False
        self.aborted = False

    def _connect(self, deadline: float) -> socket.socket:
        timeout = min(CONNECT_SECONDS, self._left(deadline))
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        limit_near_buffer(sock)
        if self.tls:
            # The handshake as a whole is bounded by the socket's timeout.
            sock.settimeout(self._left(deadline))
            sock = self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        return sock

    def _left(self, deadline: float) -> float:
        """Seconds to the head's deadline; HeadTimeout once it has passed."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._late()
        return left

    def _late(self) -> HeadTimeout:
        return HeadTimeout(f"no whole answer within {self.head_seconds:g} s")

    def _unreachable(self, exc: BaseException) -> PeerUnreachable:
        if isinstance(exc, HeadTimeout):
            reason = str(exc)
        elif isinstance(exc, TimeoutError):
            reason = "timed out"
        elif isinstance(exc, ConnectionRefusedError):
            reason = f"cannot connect ({exc.strerror or exc})"
        else:
            reason = str(exc) or type(exc).__name__
        return PeerUnreachable(f"{self.base_url} is unreachable: {reason}")

    def request(self, url: str, headers: Mapping[str, str], length: int) -> None:
        parts = urlsplit(url)
        if parts.netloc != self.netloc:
            raise ValueError(f"{url} is not on {self.base_url}")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [
            f"GET {target} HTTP/1.1",
            f"Host: {self.netloc}",
            f"User-Agent: ODS/{ods.__version__}",
            "Accept-Encoding: identity",
            *(f"{key}: {value}" for key, value in headers.items()),
        ]
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if self.aborted:
            raise PeerUnreachable(f"the fetch from {self.name} was stopped")
        reused = self.sock is not None and self.reusable and self.remaining == 0
        if not reused:
            self.close()
        try:
            try:
                status, fields = self._exchange(message)
            except (OSError, EOFError):
                if not reused or self.aborted:
                    raise
                # The peer closed the idle connection: one more try on a new one.
                self.close()
                status, fields = self._exchange(message)
        except (OSError, EOFError) as exc:
            self.close()
            raise self._unreachable(exc) from None
        self.window_waited, self.window_bytes = 0.0, 0
        self._check(status, fields, length, target)

    def _exchange(self, message: bytes) -> tuple[int, dict[str, str]]:
        deadline = time.monotonic() + self.head_seconds
        if self.sock is None:
            self.sock = self._connect(deadline)
        self.sock.settimeout(self._left(deadline))  # for the whole of sendall
        self.sock.sendall(message)
        head = bytearray()
        while b"\r\n\r\n" not in head:
            if len(head) > HEAD_LIMIT:
                raise EOFError("the answer's headers are too long")
            left = self._left(deadline)
            self.sock.settimeout(min(self.stall_seconds, left))
            try:
                part = self.sock.recv(65536)
            except TimeoutError:
                if left < self.stall_seconds:
                    raise self._late() from None
                raise
            if not part:
                raise EOFError("the connection closed before an answer")
            head += part
        raw, _, self.early = bytes(head).partition(b"\r\n\r\n")
        status_line, *header_lines = raw.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest.partition(" ")[0]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise EOFError(f"not an HTTP answer: {status_line[:80]!r}")
        fields: dict[str, str] = {}
        for line in header_lines:
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        self.reusable = version == "HTTP/1.1" and fields.get("connection", "").lower() != "close"
        return int(code), fields

    def _check(self, status: int, fields: dict[str, str], length: int, target: str) -> None:
        declared = fields.get("content-length", "")
        plain = "transfer-encoding" not in fields and declared.isdigit()
        self.remaining = int(declared) if plain else 0
        if status != 200:
            # A refusal's message is read when its length is plain; a proxy's
            # chunked error page is named by its status alone.
            body = self._read_small(min(self.remaining, ERROR_BODY_LIMIT))
            self.close()
            raise PeerRefused(f"{self.name} refused {target}: {refusal_text(status, body)}")
        if not plain:
            self.close()
            raise PeerUnreachable(f"{self.name} answered {target} without a Content-Length")
        if self.remaining != length:
            self.close()
            if int(declared) > length:
                raise ChunkTooLarge(f"{target} declared {declared} bytes, not {length}")
            raise PeerUnreachable(f"{self.name} offered {declared} of {length} bytes")

    def _read_small(self, limit: int) -> bytes:
        data = bytearray()
        try:
            while len(data) < limit:
                view = memoryview(bytearray(limit - len(data)))
                count = self.read_into(view)
                if count == 0:
                    break
                data += view[:count]
        except PeerUnreachable:
            pass
        return bytes(data)

    def read_into(self, view: memoryview) -> int:
        want = min(len(view), self.remaining)
        if want == 0:
            return 0
        if self.early:
            count = min(want, len(self.early))
            view[:count] = self.early[:count]
            self.early = self.early[count:]
        else:
            if self.sock is None:
                raise PeerUnreachable(f"{self.base_url} is unreachable: connection closed")
            try:
                count = self._receive(self.sock, view, want)
            except OSError as exc:
                self.close()
                raise self._unreachable(exc) from None
            if count == 0:
                self.close()
                raise PeerUnreachable(f"{self.name} closed the connection mid-answer")
        self.remaining -= count
        return count

    def _receive(self, sock: socket.socket, view: memoryview, want: int) -> int:
        """Body bytes from the socket, within the stall timeout and above the rate floor."""
        quiet = 0.0  # seconds waited in this call without a byte
        while True:
            stall_left = self.stall_seconds - quiet
            window_left = self.window - self.window_waited
            sock.settimeout(max(MIN_TIMEOUT, min(stall_left, window_left)))
            started = time.monotonic()
            try:
                count = sock.recv_into(view, want)
            except TimeoutError:
                waited = time.monotonic() - started
                quiet += waited
                self.window_waited += waited
                if stall_left <= window_left:
                    raise  # the stall timeout: nothing came
                self._check_rate()  # the window is over
                continue
            self.window_waited += time.monotonic() - started
            self.window_bytes += count
            # The read that ends the body is kept, however slow its window.
            if 0 < count < self.remaining and self.window_waited >= self.window:
                self._check_rate()
            return count

    def _check_rate(self) -> None:
        """At the end of a window: PeerUnreachable below the floor, else a new window."""
        rate = self.window_bytes / self.window_waited
        if rate < self.min_rate:
            self.close()
            raise PeerUnreachable(
                f"{self.name} sent {size_hr(self.window_bytes)} in {self.window_waited:.1f} s "
                f"({rate_hr(rate)}), below the minimum of {rate_hr(self.min_rate)} "
                "(ODS_FETCH_MIN_RATE)"
            )
        self.window_waited, self.window_bytes = 0.0, 0

    def abort(self) -> None:
        self.aborted = True
        sock = self.sock
        if sock is not None:
            # The plain socket's shutdown, also for TLS: it wakes a blocked
            # read in another thread without touching the TLS state.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def close(self) -> None:
        sock, self.sock = self.sock, None
        self.early, self.remaining, self.reusable = b"", 0, False
        if sock is not None:
            sock.close()
