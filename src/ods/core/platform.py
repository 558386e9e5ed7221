"""The calls ODS makes that differ by operating system, each with a portable fallback.

ODS is meant to run on Linux, macOS and Windows. Everything it asks of the platform
beyond what Python offers everywhere goes through this module, and nothing
else in ODS calls these directly:

- positional reads and writes (`os.pread`/`os.pwrite`; Windows has neither),
- writes that bypass the page cache (`O_DIRECT`: Linux and some BSDs),
- files sent to a socket by the kernel (`os.sendfile`; not on Windows),
- TCP tuning: the not-sent low-water mark (`TCP_NOTSENT_LOWAT`), the round
  trip the kernel measured (Linux's `struct tcp_info`), the receive buffer,
- the modes of private files and directories, and opening files in binary
  mode (Windows translates line ends in text mode),
- syncing a directory, so that a rename into it survives a power cut,
- the signals that ask the server to shut down.

Each function takes the platform's own call where it exists and otherwise a
portable one that gives the same result, slower at worst. Setting
`ODS_PORTABLE_IO=1` in the environment makes the functions take the portable
path as if the platform had none of the optional calls (`IN_USE`): a
diagnostic switch, and how the tests run the mesh over the fallbacks. It is
read once, when this module is first imported. File modes, directory syncs
and signals do not depend on it: they are durability and safety, and the
same calls serve every platform that has them.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

PORTABLE_SWITCH = "ODS_PORTABLE_IO"
_ON = frozenset({"1", "true", "yes", "on"})

FILE_MODE = 0o644  # package files: the server's user writes, anyone may read
PRIVATE_FILE_MODE = 0o600  # secrets
PRIVATE_DIR_MODE = 0o700
# Direct writes must start at, and be a whole multiple of, the device's
# logical block size; 4096 covers every current disk.
DIRECT_ALIGN = 4096

# Windows opens files in text mode unless told otherwise, and would turn
# every 0x0A byte written into 0x0D 0x0A. The flag is 0 elsewhere.
_BINARY: int = getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class Native:
    """The optional platform calls this process uses; the portable path stands in for the rest."""

    positional_io: bool  # os.pread and os.pwrite
    cached_read: bool  # os.preadv with RWF_NOWAIT: a read that never waits for the disk
    direct_flag: int  # os.O_DIRECT, or 0
    tcp_info: bool  # getsockopt(TCP_INFO) returning Linux's struct tcp_info
    notsent_lowat: int | None  # the TCP_NOTSENT_LOWAT option number
    send_file: bool  # os.sendfile: the kernel copies a file to a socket (loop.sendfile)


PORTABLE = Native(
    positional_io=False,
    cached_read=False,
    direct_flag=0,
    tcp_info=False,
    notsent_lowat=None,
    send_file=False,
)


def detect() -> Native:
    """What this platform offers."""
    return Native(
        positional_io=hasattr(os, "pread") and hasattr(os, "pwrite"),
        cached_read=hasattr(os, "preadv") and hasattr(os, "RWF_NOWAIT"),
        direct_flag=getattr(os, "O_DIRECT", 0),
        # Other systems name an option TCP_INFO too, with another layout.
        tcp_info=sys.platform.startswith("linux") and hasattr(socket, "TCP_INFO"),
        notsent_lowat=getattr(socket, "TCP_NOTSENT_LOWAT", None),
        send_file=hasattr(os, "sendfile"),
    )


def portable_forced(environ: Mapping[str, str]) -> bool:
    """Whether `environ` sets ODS_PORTABLE_IO to 1 (or true, yes, on)."""
    return environ.get(PORTABLE_SWITCH, "").strip().lower() in _ON


FORCED = portable_forced(os.environ)
IN_USE: Native = PORTABLE if FORCED else detect()


# Files


def open_file(path: Path, flags: int, mode: int = FILE_MODE) -> int:
    """`os.open` in binary mode on every platform; a new file gets `mode`."""
    return os.open(path, flags | _BINARY, mode)


# Without pread and pwrite, a read or write at an offset is a seek followed by
# a read or write, and another thread must not move the position in between.
# Locks are per descriptor number, folded onto a few, so that unrelated files
# seldom wait on each other.
_SEEK_LOCKS = tuple(threading.Lock() for _ in range(64))


def _read_once(fd: int, length: int, offset: int) -> bytes:
    if IN_USE.positional_io:
        return os.pread(fd, length, offset)
    with _SEEK_LOCKS[fd % len(_SEEK_LOCKS)]:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, length)


def _write_once(fd: int, data: memoryview, offset: int) -> int:
    if IN_USE.positional_io:
        return os.pwrite(fd, data, offset)
    with _SEEK_LOCKS[fd % len(_SEEK_LOCKS)]:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.write(fd, data)


def read_at(fd: int, length: int, offset: int) -> bytes:
    """`length` bytes from `offset`, fewer only where the file ends.

    Safe from several threads at once on one descriptor, as long as every
    read and write on it goes through `read_at` and `write_at`.
    """
    data = _read_once(fd, length, offset)
    if len(data) == length or not data:
        return data
    parts, got = [data], len(data)
    while got < length:
        more = _read_once(fd, length - got, offset + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def read_cached(fd: int, length: int, offset: int) -> bytearray | None:
    """Up to `length` bytes from `offset` when the page cache holds them, without
    waiting for the disk, so that the event loop may read them itself; None when they
    are not held (or the platform or filesystem cannot tell): read them in a thread."""
    if not IN_USE.cached_read:
        return None
    buffer = bytearray(length)
    try:
        count = os.preadv(fd, [buffer], offset, os.RWF_NOWAIT)
    except OSError:  # EAGAIN: not in the cache; EOPNOTSUPP: this filesystem cannot say
        return None
    if count <= 0:
        return None
    if count < length:
        del buffer[count:]
    return buffer


def send_file_part(socket_fd: int, file_fd: int, offset: int, count: int) -> int:
    """Up to `count` bytes of the file from `offset` copied by the kernel to a
    non-blocking socket (`os.sendfile`), how many it took; BlockingIOError when the
    socket's buffer is full. Only where `IN_USE.send_file`."""
    return os.sendfile(socket_fd, file_fd, offset, count)


def write_at(fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
    """All of `data` at `offset`; the same rules for threads as `read_at`."""
    view = memoryview(data).cast("B")
    while view:
        written = _write_once(fd, view, offset)
        view = view[written:]
        offset += written


def aligned_buffer(size: int) -> memoryview:
    """Writable memory that starts on a page boundary, as direct writes need.

    An anonymous map is page-aligned on every platform.
    """
    return memoryview(mmap.mmap(-1, size))


def open_direct(path: Path) -> int | None:
    """A descriptor writing `path` past the page cache; None where there is no such write.

    None also where the filesystem refuses the flag at open (tmpfs before
    Linux 6.6, some network filesystems). Writes through it go by
    `write_direct`, from `aligned_buffer` memory, where `direct_fits`.
    """
    if not IN_USE.direct_flag:
        return None
    try:
        return os.open(path, os.O_WRONLY | IN_USE.direct_flag | _BINARY)
    except OSError:
        return None


def direct_fits(offset: int, length: int) -> bool:
    """Whether a write at `offset` of `length` bytes may go through `open_direct`'s descriptor."""
    return offset % DIRECT_ALIGN == 0 and length % DIRECT_ALIGN == 0


def write_direct(fd: int, data: memoryview, offset: int) -> bool:
    """Write through a descriptor from `open_direct`.

    False when the filesystem took the direct open but refuses direct writes
    (EINVAL): the caller closes the descriptor and writes through the cache
    from then on. Any part already written is rewritten with the same bytes.
    """
    try:
        write_at(fd, data, offset)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return False
    return True


def hard_link(source: Path, target: Path, fd: int | None = None) -> None:
    """Make `target` another name of `source`. With `fd` (`source` open), of the very
    file open as `fd` where the system allows it (Linux: linkat through /proc/self/fd),
    else of whatever `source` names by then."""
    proc = f"/proc/self/fd/{fd}"
    if fd is None or not sys.platform.startswith("linux") or not os.path.exists(proc):
        os.link(source, target)
        return
    target_dir = os.open(target.parent, os.O_RDONLY)
    try:
        # A directory fd makes os.link use linkat, which follows the /proc link.
        os.link(proc, target.name, dst_dir_fd=target_dir, follow_symlinks=True)
    finally:
        os.close(target_dir)


def sync_dir(path: Path) -> None:
    """Make renames into the directory `path` durable.

    Windows cannot open a directory to sync it; NTFS journals a rename
    itself, so there is nothing to do there.
    """
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pid_exists(pid: int) -> bool:
    """Whether a process with this pid runs on this machine. On Windows, signal 0 would be
    CTRL_C_EVENT sent to the process group: there it is True, and only a lease that
    runs out tells that a process is gone."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_private_dir(path: Path) -> None:
    """Create `path` and its parents; a new `path` is open to its owner only.

    On Windows the mode does nothing: the data dir's access list (inherited
    from where it lives) decides who can read it.
    """
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)


def create_private_file(path: Path) -> int:
    """A new file (FileExistsError if there is one) readable by its owner only, for writing.

    On Windows only the read-only bit of a mode exists; as for directories,
    the access list of the data dir protects it.
    """
    return open_file(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)


def keep_private(path: Path) -> None:
    """Make `path`, if it exists, readable by its owner only (as create_private_file).

    On Windows the access list of the data dir protects it.
    """
    if os.name == "nt":
        return
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_mode & 0o777 != PRIVATE_FILE_MODE:
            path.chmod(PRIVATE_FILE_MODE)


# Sockets

# struct tcp_info (linux/tcp.h): 8 one-byte fields, then 32-bit fields;
# tcpi_rtt (microseconds) is the 16th of those.
_TCP_INFO_RTT_OFFSET = 8 + 15 * 4
_TCP_INFO_SIZE = 104


def set_send_lowat(sock: socket.socket, limit: int) -> bool:
    """Keep at most `limit` unsent bytes in a TCP socket's kernel send buffer.

    Bytes in flight are not counted. A listening socket passes the limit to
    the connections it accepts. False, and nothing changed, where the
    platform has no such limit or the socket is not TCP.
    """
    option = IN_USE.notsent_lowat
    if option is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    sock.setsockopt(socket.IPPROTO_TCP, option, limit)
    return True


def round_trip_seconds(sock: socket.socket) -> float | None:
    """The smoothed round trip the kernel measured for a connection; None where it does not say."""
    if not IN_USE.tcp_info:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    except OSError:
        return None  # not a TCP socket
    if len(info) < _TCP_INFO_RTT_OFFSET + 4:
        return None
    rtt = info[_TCP_INFO_RTT_OFFSET : _TCP_INFO_RTT_OFFSET + 4]
    return int.from_bytes(rtt, "little") / 1e6


def set_receive_buffer(sock: socket.socket, size: int) -> None:
    """Fix the socket's receive buffer at `size` bytes, instead of letting the kernel size it.

    Every platform has the option; Linux reserves twice `size` (half of it
    for its bookkeeping) and caps `size` at net.core.rmem_max.
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


# Signals

SignalHandler = Callable[[int, FrameType | None], None]


def shutdown_signals() -> tuple[signal.Signals, ...]:
    """The signals that ask the server to shut down.

    SIGTERM (supervisors, `kill`) and SIGINT (Ctrl+C); on Windows, where
    nothing sends SIGTERM, SIGINT and SIGBREAK (Ctrl+Break).
    """
    names = ("SIGINT", "SIGBREAK") if sys.platform == "win32" else ("SIGTERM", "SIGINT")
    return tuple(getattr(signal, name) for name in names if hasattr(signal, name))


@contextlib.contextmanager
def shutdown_handlers(handler: SignalHandler) -> Iterator[None]:
    """Call `handler` for each shutdown signal while inside.

    On leaving, the previous handlers are back and the signals that came are
    raised again, so that the process ends by them after the graceful
    shutdown `handler` began, as a supervisor expects. Python takes signals
    in the main thread only; elsewhere nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def take(number: int, frame: FrameType | None) -> None:
        received.append(number)
        handler(number, frame)

    previous = {number: signal.signal(number, take) for number in shutdown_signals()}
    try:
        yield
    finally:
        for number, before in previous.items():
            # None: a handler not set from Python, which cannot be put back.
            signal.signal(number, signal.SIG_DFL if before is None else before)
    for caught in reversed(received):
        signal.raise_signal(caught)
