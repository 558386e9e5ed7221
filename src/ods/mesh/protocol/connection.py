"""A plain HTTP/1.1 connection to a peer for chunk runs, read from a worker thread.

Chunk bytes are the bulk of what a server receives, so they skip the
general HTTP client: the request is written by hand, the answer's head is
parsed, and the body is received straight into the caller's buffer with
`recv_into`, in a thread that holds no lock while it waits. One connection
serves every run of a fetch (keep-alive), so a long-distance link keeps its
window open between runs. Peers are reached directly, like every other peer
call; `https` URLs are verified with the same trust as the rest of ODS.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

import ods
from ods.core import platform
from ods.mesh.protocol.client import ChunkTooLarge, PeerRefused, PeerUnreachable, refusal_text

CONNECT_SECONDS = 10.0
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
    """An HTTP/1.1 connection to one peer's base URL, for GETs with a known body length."""

    def __init__(
        self, base_url: str, *, name: str, ssl_context: ssl.SSLContext, stall_seconds: float
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
        self.sock: socket.socket | None = None
        self.early = b""  # body bytes that came with the head
        self.remaining = 0  # body bytes not yet read
        self.reusable = False
        self.aborted = False

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=CONNECT_SECONDS)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        limit_near_buffer(sock)
        if self.tls:
            sock = self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        sock.settimeout(self.stall_seconds)
        return sock

    def _unreachable(self, exc: BaseException) -> PeerUnreachable:
        if isinstance(exc, TimeoutError):
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
        self._check(status, fields, length, target)

    def _exchange(self, message: bytes) -> tuple[int, dict[str, str]]:
        if self.sock is None:
            self.sock = self._connect()
        self.sock.sendall(message)
        head = bytearray()
        while b"\r\n\r\n" not in head:
            if len(head) > HEAD_LIMIT:
                raise EOFError("the answer's headers are too long")
            part = self.sock.recv(65536)
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
                count = self.sock.recv_into(view, want)
            except OSError as exc:
                self.close()
                raise self._unreachable(exc) from None
            if count == 0:
                self.close()
                raise PeerUnreachable(f"{self.name} closed the connection mid-answer")
        self.remaining -= count
        return count

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
