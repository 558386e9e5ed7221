"""ods.core.platform: each call on the platform's own path and on the portable one."""

from __future__ import annotations

import ast
import ctypes
import errno
import mmap
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from ods.core import platform

MIB = 1024 * 1024
PATHS = ("native", "portable")


@pytest.fixture(params=PATHS)
def path_in_use(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test on this platform's own calls, then on the portable path."""
    name: str = request.param
    monkeypatch.setattr(
        platform, "IN_USE", platform.detect() if name == "native" else platform.PORTABLE
    )
    return name


@pytest.fixture
def native(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "IN_USE", platform.detect())


@pytest.fixture
def portable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "IN_USE", platform.PORTABLE)


@pytest.fixture
def fd(tmp_path: Path) -> Iterator[int]:
    descriptor = platform.open_file(tmp_path / "file", os.O_RDWR | os.O_CREAT)
    try:
        yield descriptor
    finally:
        os.close(descriptor)


# The switch


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_the_switch_forces_the_portable_path(value: str) -> None:
    assert platform.portable_forced({platform.PORTABLE_SWITCH: value})


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off"])
def test_the_switch_off_or_unset_leaves_the_platforms_calls(value: str) -> None:
    assert not platform.portable_forced({platform.PORTABLE_SWITCH: value})
    assert not platform.portable_forced({})


@pytest.mark.parametrize("value", ["1", "0"])
def test_the_switch_is_read_from_the_environment_at_import(value: str) -> None:
    code = (
        "from ods.core import platform;"
        "print(platform.FORCED, platform.IN_USE == platform.PORTABLE, platform.detect())"
    )
    env = {**os.environ, platform.PORTABLE_SWITCH: value}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split(" ", 2)
    forced = value == "1"
    assert out[:2] == [str(forced), str(forced)]
    assert out[2].strip() == repr(platform.detect()), "the switch hides calls, never detects"


def test_linux_offers_every_optional_call() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("what Linux offers")
    native = platform.detect()
    assert native.positional_io
    assert native.cached_read
    assert native.direct_flag == os.O_DIRECT
    assert native.tcp_info
    assert native.notsent_lowat == socket.TCP_NOTSENT_LOWAT
    assert native.send_file


def test_a_platform_without_the_calls_gets_the_portable_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What Windows lacks; and another system's TCP_INFO is not Linux's layout.
    for name in ("pread", "pwrite", "preadv", "O_DIRECT", "sendfile"):
        monkeypatch.delattr(os, name, raising=False)
    monkeypatch.delattr(socket, "TCP_NOTSENT_LOWAT", raising=False)
    monkeypatch.setattr(sys, "platform", "freebsd14")
    assert platform.detect() == platform.PORTABLE


# Positional reads and writes


def test_writes_and_reads_land_at_odd_offsets(fd: int, path_in_use: str) -> None:
    data = os.urandom(3 * MIB + 77)
    expected = bytearray(4 * MIB)
    pieces = [(0, 1), (1, 4095), (4096, MIB + 3), (MIB + 3, 3 * MIB + 77)]
    for start, end in reversed(pieces):
        platform.write_at(fd, memoryview(data)[start:end], start + 5)
        expected[start + 5 : end + 5] = data[start:end]
    platform.write_at(fd, b"tail", 4 * MIB - 4)
    expected[-4:] = b"tail"
    assert platform.read_at(fd, 4 * MIB, 0) == expected
    for offset, length in [(0, 1), (5, 3), (4097, 9999), (MIB + 1, MIB), (4 * MIB - 3, 3)]:
        assert platform.read_at(fd, length, offset) == expected[offset : offset + length]


def test_a_read_is_short_only_where_the_file_ends(fd: int, path_in_use: str) -> None:
    platform.write_at(fd, b"0123456789", 0)
    assert platform.read_at(fd, 100, 7) == b"789"
    assert platform.read_at(fd, 5, 10) == b""
    assert platform.read_at(fd, 5, 1000) == b""


def test_a_cached_read_gets_what_the_page_cache_holds(fd: int, native: None) -> None:
    platform.write_at(fd, b"0123456789", 0)  # just written: in the page cache
    assert platform.read_cached(fd, 4, 3) == bytearray(b"3456")
    assert platform.read_cached(fd, 100, 7) == bytearray(b"789")
    assert platform.read_cached(fd, 5, 10) is None  # the end: nothing to hand out


def test_a_read_the_disk_would_have_to_answer_is_left_to_a_thread(
    fd: int, native: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_cached(*args: object) -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    platform.write_at(fd, b"0123456789", 0)
    monkeypatch.setattr(os, "preadv", not_cached)
    assert platform.read_cached(fd, 4, 0) is None


def test_the_portable_path_reads_nothing_on_the_event_loop(fd: int, portable: None) -> None:
    platform.write_at(fd, b"0123456789", 0)
    assert platform.read_cached(fd, 4, 0) is None


def test_a_write_past_the_end_leaves_zeros_between(fd: int, path_in_use: str) -> None:
    platform.write_at(fd, b"ab", 0)
    platform.write_at(fd, b"yz", 10)
    assert platform.read_at(fd, 100, 0) == b"ab" + bytes(8) + b"yz"


def test_short_writes_and_reads_are_continued(
    fd: int, path_in_use: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A signal or a full pipe can cut a call short; the caller still gets it all.
    calls = {"write": 0, "read": 0}
    if path_in_use == "native":
        real_pwrite, real_pread = os.pwrite, os.pread

        def pwrite(fd: int, data: Any, offset: int) -> int:
            calls["write"] += 1
            return real_pwrite(fd, memoryview(data)[:1000], offset)

        def pread(fd: int, length: int, offset: int) -> bytes:
            calls["read"] += 1
            return real_pread(fd, min(length, 700), offset)

        monkeypatch.setattr(os, "pwrite", pwrite)
        monkeypatch.setattr(os, "pread", pread)
    else:
        real_write, real_read = os.write, os.read

        def write(fd: int, data: Any) -> int:
            calls["write"] += 1
            return real_write(fd, memoryview(data)[:1000])

        def read(fd: int, length: int) -> bytes:
            calls["read"] += 1
            return real_read(fd, min(length, 700))

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "read", read)
    data = os.urandom(10_000)
    platform.write_at(fd, data, 3)
    assert platform.read_at(fd, 10_000, 3) == data
    assert calls == {"write": 10, "read": 15}


def test_the_portable_path_needs_no_positional_calls(
    fd: int, portable: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "pread")
    monkeypatch.delattr(os, "pwrite")
    platform.write_at(fd, b"hello", 2)
    assert platform.read_at(fd, 7, 0) == b"\0\0hello"


def test_threads_sharing_a_descriptor_each_land_in_place(fd: int, path_in_use: str) -> None:
    # On the portable path a seek and a read or write must not interleave with another's.
    pieces = 64
    size = 64 * 1024 + 7
    blocks = [os.urandom(size) for _ in range(pieces)]
    wrong: list[int] = []

    def work(worker: int) -> None:
        for index in range(worker, pieces, 8):
            platform.write_at(fd, blocks[index], index * size)
        for index in range(worker, pieces, 8):
            if platform.read_at(fd, size, index * size) != blocks[index]:
                wrong.append(index)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert platform.read_at(fd, pieces * size, 0) == b"".join(blocks)


def test_new_files_get_the_package_mode_at_most(tmp_path: Path) -> None:
    fd = platform.open_file(tmp_path / "new", os.O_WRONLY | os.O_CREAT)
    os.close(fd)
    mode = stat.S_IMODE((tmp_path / "new").stat().st_mode)
    assert mode & ~platform.FILE_MODE == 0
    assert mode & stat.S_IRUSR
    assert mode & stat.S_IWUSR


def test_bytes_are_written_as_they_are(fd: int, path_in_use: str) -> None:
    # No line-end translation, which Windows does to files not opened as binary.
    data = b"a\nb\r\nc\x1a\x00"
    platform.write_at(fd, data, 0)
    assert platform.read_at(fd, 100, 0) == data


# Direct writes


def aligned(data: bytes) -> memoryview:
    buffer = platform.aligned_buffer(len(data))
    buffer[:] = data
    return buffer


def test_aligned_buffers_start_on_a_page() -> None:
    buffer = platform.aligned_buffer(MIB)
    assert len(buffer) == MIB
    assert not buffer.readonly
    assert ctypes.addressof(ctypes.c_char.from_buffer(buffer)) % mmap.PAGESIZE == 0
    assert platform.DIRECT_ALIGN % 512 == 0


def test_direct_writes_land_where_the_filesystem_takes_them(tmp_path: Path, native: None) -> None:
    path = tmp_path / "staging"
    path.write_bytes(bytes(3 * platform.DIRECT_ALIGN))
    fd = platform.open_direct(path)
    assert fd is not None, f"{tmp_path} should take O_DIRECT opens, as ext4 and tmpfs do"
    try:
        data = os.urandom(2 * platform.DIRECT_ALIGN)
        assert platform.write_direct(fd, aligned(data), platform.DIRECT_ALIGN)
    finally:
        os.close(fd)
    assert path.read_bytes() == bytes(platform.DIRECT_ALIGN) + data


def test_the_portable_path_writes_nothing_direct(tmp_path: Path, portable: None) -> None:
    path = tmp_path / "staging"
    path.touch()
    assert platform.open_direct(path) is None


def test_a_filesystem_refusing_direct_opens_gets_none(
    tmp_path: Path, native: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open
    direct = platform.IN_USE.direct_flag

    def refusing(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & direct:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing)
    path = tmp_path / "staging"
    path.touch()
    assert platform.open_direct(path) is None


def write_direct_failing_with(error: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bool:
    def failing(fd: int, data: Any, offset: int) -> int:
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(os, "pwrite", failing)
    path = tmp_path / "staging"
    path.touch()
    fd = platform.open_file(path, os.O_WRONLY)
    try:
        return platform.write_direct(fd, aligned(bytes(platform.DIRECT_ALIGN)), 0)
    finally:
        os.close(fd)


def test_a_filesystem_refusing_direct_writes_is_told_apart(
    tmp_path: Path, native: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a filesystem that opens with O_DIRECT but cannot write that way says.
    assert write_direct_failing_with(errno.EINVAL, tmp_path, monkeypatch) is False


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO])
def test_other_direct_write_errors_are_raised(
    tmp_path: Path, native: None, monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    with pytest.raises(OSError, match=os.strerror(error)):
        write_direct_failing_with(error, tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("offset", "length", "fits"),
    [(0, 4096, True), (8192, MIB, True), (4095, 4096, False), (0, 4097, False), (1, 1, False)],
)
def test_direct_writes_fit_whole_blocks_only(offset: int, length: int, fits: bool) -> None:
    assert platform.direct_fits(offset, length) is fits


# Directories and private files


def test_a_directory_is_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    platform.sync_dir(tmp_path)
    assert len(synced) == 1


def test_where_directories_cannot_be_opened_none_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_open(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("Windows cannot open a directory")

    monkeypatch.delattr(os, "O_DIRECTORY")
    monkeypatch.setattr(os, "open", no_open)
    platform.sync_dir(tmp_path)


def test_a_private_dir_is_its_owners_only(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("POSIX modes")
    path = tmp_path / "a" / "secrets"
    platform.make_private_dir(path)
    platform.make_private_dir(path)  # already there: fine
    assert stat.S_IMODE(path.stat().st_mode) == platform.PRIVATE_DIR_MODE


def test_a_private_file_is_new_and_its_owners_only(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    fd = platform.create_private_file(path)
    os.write(fd, b"s3cret\n")
    os.close(fd)
    assert path.read_bytes() == b"s3cret\n"
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == platform.PRIVATE_FILE_MODE
    with pytest.raises(FileExistsError):
        platform.create_private_file(path)
    assert path.read_bytes() == b"s3cret\n"


# Sockets


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket, socket.socket]]:
    """A listener, a connection to it, and the accepted end."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname()[:2])
    accepted, _ = listener.accept()
    with listener, client, accepted:
        yield listener, client, accepted


def test_a_listener_passes_the_unsent_limit_to_its_connections(native: None) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        assert platform.set_send_lowat(listener, 96 * 1024)
        with socket.create_connection(listener.getsockname()[:2]):
            accepted, _ = listener.accept()
            with accepted:
                option = socket.TCP_NOTSENT_LOWAT
                assert accepted.getsockopt(socket.IPPROTO_TCP, option) == 96 * 1024


def test_the_portable_path_leaves_the_unsent_limit_alone(portable: None) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        before = listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT)
        assert not platform.set_send_lowat(listener, 96 * 1024)
        assert listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT) == before
        assert before != 96 * 1024


def test_a_socket_that_is_not_tcp_gets_no_unsent_limit(path_in_use: str) -> None:
    left, right = socket.socketpair()
    with left, right:
        assert not platform.set_send_lowat(left, 96 * 1024)


def test_the_round_trip_is_read_from_the_kernel(
    native: None, tcp_pair: tuple[socket.socket, socket.socket, socket.socket]
) -> None:
    _, client, _ = tcp_pair
    rtt = platform.round_trip_seconds(client)
    assert rtt is not None
    assert 0 < rtt < 0.01  # loopback


def test_the_portable_path_knows_no_round_trip(
    portable: None, tcp_pair: tuple[socket.socket, socket.socket, socket.socket]
) -> None:
    _, client, _ = tcp_pair
    assert platform.round_trip_seconds(client) is None


def test_a_socket_that_is_not_tcp_has_no_round_trip(path_in_use: str) -> None:
    left, right = socket.socketpair()
    with left, right:
        assert platform.round_trip_seconds(left) is None


def test_the_receive_buffer_is_fixed(
    path_in_use: str, tcp_pair: tuple[socket.socket, socket.socket, socket.socket]
) -> None:
    _, client, _ = tcp_pair
    platform.set_receive_buffer(client, 64 * 1024)
    reserved = client.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    # Linux reserves twice the size asked, for its bookkeeping.
    assert reserved == (2 if sys.platform.startswith("linux") else 1) * 64 * 1024


# Signals


def test_linux_shuts_down_on_sigterm_and_sigint() -> None:
    if sys.platform == "win32":
        pytest.skip("POSIX signals")
    assert platform.shutdown_signals() == (signal.SIGTERM, signal.SIGINT)


def test_windows_shuts_down_on_ctrl_c_and_ctrl_break(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(signal, "SIGBREAK", 21, raising=False)
    assert platform.shutdown_signals() == (signal.SIGINT, 21)


def test_a_shutdown_signal_reaches_the_handler_then_the_one_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if sys.platform == "win32":
        pytest.skip("POSIX signals")
    seen: list[tuple[str, int]] = []

    def before(number: int, frame: FrameType | None) -> None:
        seen.append(("before", number))

    def handler(number: int, frame: FrameType | None) -> None:
        seen.append(("handler", number))

    originals = {number: signal.getsignal(number) for number in platform.shutdown_signals()}
    try:
        for number in originals:
            signal.signal(number, before)
        with platform.shutdown_handlers(handler):
            signal.raise_signal(signal.SIGTERM)
            assert seen == [("handler", signal.SIGTERM)]
        # Raised again once the graceful shutdown is done, to what was there before.
        assert seen == [("handler", signal.SIGTERM), ("before", signal.SIGTERM)]
        assert all(signal.getsignal(number) is before for number in originals)
    finally:
        for number, original in originals.items():
            signal.signal(number, original)


def test_outside_the_main_thread_no_handler_is_installed() -> None:
    handlers = {number: signal.getsignal(number) for number in platform.shutdown_signals()}
    inside: list[dict[int, object]] = []

    def run() -> None:
        with platform.shutdown_handlers(lambda number, frame: None):
            inside.append({n: signal.getsignal(n) for n in platform.shutdown_signals()})

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert inside == [handlers]


# Only the seam makes these calls

SOURCE = Path(platform.__file__).resolve().parents[1]  # src/ods
SEAM = Path(platform.__file__).resolve()
# Names that are platform-specific wherever they appear: as os.X, socket.X,
# `from os import X`, or a string handed to getattr.
SEAM_ONLY = frozenset(
    {
        "pread",
        "pwrite",
        "preadv",
        "pwritev",
        "RWF_NOWAIT",
        "O_DIRECT",
        "O_DIRECTORY",
        "O_BINARY",
        "F_NOCACHE",
        "TCP_NOTSENT_LOWAT",
        "TCP_INFO",
        "SO_RCVBUF",
        "SIGBREAK",
    }
)


def platform_names(path: Path) -> list[str]:
    """`line: name` for each platform-specific name the module at `path` uses."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]
        elif isinstance(node, ast.Call) and ast.unparse(node.func) == "signal.signal":
            names = ["signal.signal"]
        line = getattr(node, "lineno", "?")
        found += [f"{line}: {name}" for name in names if name in SEAM_ONLY | {"signal.signal"}]
    return found


def test_no_module_but_the_seam_makes_platform_calls() -> None:
    modules = sorted(path for path in SOURCE.rglob("*.py") if path.resolve() != SEAM)
    assert len(modules) > 50, f"{SOURCE} should hold ODS's modules"
    offenders = {
        str(path.relative_to(SOURCE)): names for path in modules if (names := platform_names(path))
    }
    assert offenders == {}, "call these through ods.core.platform"


def test_the_scan_finds_each_name_where_it_is_used() -> None:
    used = {entry.split(": ", 1)[1] for entry in platform_names(SEAM)}
    # The seam uses all of them but the ones ODS has no use for yet.
    assert used == SEAM_ONLY - {"pwritev", "F_NOCACHE"} | {"signal.signal"}
