"""The download fast path: `GET`/`HEAD` of a Public package without the framework.

Thousands of Macs download from each server, so a download must cost little
more than the bytes. This ASGI layer answers the plain downloads of
`/share/{filename}` and `/<ODS_JAMF_SHARE_NAME>/Packages/{filename}` itself, from
a small index of what it looked up, and hands everything else to the app (the
routes in `share.py`, which answer the same way and say why when they refuse):

- downloads that need a decision (ODS_SHARE_REQUIRES_LOGIN, a Jamf Pro token);
- names that are not already safe and normalised, and names not found;
- ranges of more than one part, ranges outside the file, HEAD with a range.

What the index holds is exact or not used. An entry is the package's SHA1 (the
ETag) together with the identity of the file it was looked up with (device,
inode, size, modification and change times), taken before and after the database said the
package is Public; each download opens the file and checks that identity, so a
replaced or removed file is never sent under the old ETag. An entry is also
forgotten once this process commits any write, and after `ENTRY_SECONDS`, for
changes made by other processes of the site that leave the file alone (a
withdrawal by stage): those reach the fast path within that time.

Nginx asks first (deploy/nginx/ods.conf): the shipped config sends each
download's headers to ODS as a check (`X-ODS-Check`) and caches the answer for
a second when it needed no decision, so most downloads never reach ODS. A
check is answered 200 with the X-Accel-Redirect answer and `X-ODS-Version`,
the SHA1 naming the file under versions/ that Nginx then sends, or 403 for
anything else (a refusal, 304, a name not found), which Nginx hands to ODS as
an ordinary request to answer in full.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from dataclasses import dataclass
from email.utils import formatdate
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ods.core import platform
from ods.core.errors import OdsError
from ods.packages.naming import check_filename
from ods.packages.ranges import honoured_range
from ods.packages.views import find_public
from ods.web import zero_copy

if TYPE_CHECKING:
    from ods.core.context import Context

ENTRY_SECONDS = 1.0
CHECK_HEADER = b"x-ods-check"
VERSION = re.compile(rb"[0-9a-f]{40}")
# How long Nginx may reuse a check's answer that needed no decision (X-Accel-Expires).
CHECK_CACHE_SECONDS = 1
MAX_ENTRIES = 4096
# Files up to this size are read and sent in one go; larger ones in pieces.
WHOLE_BYTES = 256 * 1024
PIECE_BYTES = 1024 * 1024
# What the pieces of all downloads under way may hold at once: a piece sent to a
# slow client waits in its connection's buffer, so with many downloads at once each
# sends smaller pieces (down to SMALLEST_PIECE_BYTES) and memory stays flat.
SENDING_BYTES = 16 * 1024 * 1024
SMALLEST_PIECE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Entry:
    sha1: str
    identity: tuple[int, int, int, int, int]
    generation: int
    checked: float


def identity(stat: os.stat_result) -> tuple[int, int, int, int, int]:
    """Which file this is. The change time is in it because the modification time is
    the version's creation time (`PackageFiles.publish`), and a new file may reuse the
    inode of one removed."""
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class DownloadIndex:
    """Filename -> what the last lookup found, for as long as it is known to hold."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        # Lookups under way: the downloads of a name that come meanwhile wait for the
        # same one (when an entry goes, hundreds of clients may ask for it at once).
        self._looking: dict[str, asyncio.Future[Entry | None]] = {}
        self.sending = 0  # downloads sending pieces right now

    def piece_bytes(self) -> int:
        """How much each download under way reads and sends at a time."""
        share = SENDING_BYTES // max(1, self.sending)
        return max(SMALLEST_PIECE_BYTES, min(PIECE_BYTES, share))

    @classmethod
    def for_context(cls, context: Context) -> DownloadIndex:
        return cls()

    def close(self) -> None:
        self._entries.clear()

    def get(self, context: Context, filename: str) -> Entry | None:
        entry = self._entries.get(filename)
        if entry is None:
            return None
        fresh = time.monotonic() - entry.checked < ENTRY_SECONDS
        if entry.generation != context.db.write_generation or not fresh:
            del self._entries[filename]
            return None
        return entry

    async def look_up(self, context: Context, filename: str) -> Entry | None:
        """Ask the database, once for all who ask meanwhile; an entry only when the file
        stayed the same."""
        pending = self._looking.get(filename)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this download was cancelled
                return await self._look_up(context, filename)  # the one that asked was
        pending = self._looking[filename] = asyncio.get_running_loop().create_future()
        try:
            entry = await self._look_up(context, filename)
        except asyncio.CancelledError:
            pending.cancel()
            raise
        except Exception as exc:
            pending.set_exception(exc)
            pending.exception()  # marked retrieved: the waiters, if any, raise it
            raise
        else:
            pending.set_result(entry)
            return entry
        finally:
            del self._looking[filename]

    async def _look_up(self, context: Context, filename: str) -> Entry | None:
        path = context.files.published(filename)
        generation = context.db.write_generation
        checked = time.monotonic()
        try:
            before = identity(os.stat(path))
            package = await find_public(context.db, filename)
            after = identity(os.stat(path))
        except OSError:
            return None
        if package is None or package.filename != filename or before != after:
            return None
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        entry = Entry(package.sha1, after, generation, checked)
        self._entries[filename] = entry
        return entry

    def forget(self, filename: str) -> None:
        self._entries.pop(filename, None)


class FastDownloads:
    """Answers what it can of the downloads (see the module's doc); the rest goes on."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        prefix = self._prefix(scope)
        if prefix is None:
            await self.app(scope, receive, send)
            return
        context: Context | None = getattr(scope["app"].state, "context", None)
        if any(name == CHECK_HEADER for name, _ in scope["headers"]):
            if context is None or not context.settings.accel_redirect:
                await send_refusal(send)
                return
            send = CheckAnswer(send)
        filename = safe_name(scope["path"][len(prefix) :])
        if filename is None or context is None or needs_decision(context):
            await self.app(scope, receive, send)
            return
        if not await self._serve(context, filename, scope, receive, send):
            await self.app(scope, receive, send)

    def _prefix(self, scope: Scope) -> str | None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return None
        path: str = scope["path"]
        return next((prefix for prefix in self.prefixes if path.startswith(prefix)), None)

    async def _serve(
        self, context: Context, filename: str, scope: Scope, receive: Receive, send: Send
    ) -> bool:
        """Whether it answered; False hands the request to the app, nothing sent yet."""
        index = context.part(DownloadIndex)
        entry = index.get(context, filename) or await index.look_up(context, filename)
        if entry is None:
            return False
        try:
            fd = platform.open_file(context.files.published(filename), os.O_RDONLY)
        except OSError:
            index.forget(filename)
            return False
        try:
            stat = os.fstat(fd)
            if identity(stat) != entry.identity:
                index.forget(filename)
                return False
            return await self._answer(context, entry, filename, stat, fd, scope, receive, send)
        finally:
            os.close(fd)

    async def _answer(
        self,
        context: Context,
        entry: Entry,
        filename: str,
        stat: os.stat_result,
        fd: int,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> bool:
        headers = dict_of(scope)
        etag = f'"{entry.sha1}"'
        common = [(b"etag", etag.encode()), (b"cache-control", b"no-cache")]
        if_none_match = headers.get("if-none-match")
        if if_none_match and etag_matches(if_none_match, entry.sha1):
            await send({"type": "http.response.start", "status": 304, "headers": common})
            await send({"type": "http.response.body", "body": b""})
            return True
        described = [
            *common,
            (b"content-type", b"application/octet-stream"),
            (b"content-disposition", attachment(filename).encode("latin-1")),
        ]
        accel = context.settings.accel_redirect
        if accel:
            location = (accel + quote(filename)).encode("latin-1")
            start = [*described, (b"x-accel-redirect", location), (b"content-length", b"0")]
            if isinstance(send, CheckAnswer):  # no decision was needed: Nginx may reuse it
                start.append((b"x-accel-expires", str(CHECK_CACHE_SECONDS).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": start})
            await send({"type": "http.response.body", "body": b""})
            return True
        last_modified = formatdate(stat.st_mtime, usegmt=True)
        try:
            wanted = honoured_range(
                headers.get("range"),
                stat.st_size,
                if_range=headers.get("if-range"),
                validators=(etag, last_modified),
            )
        except OdsError:
            return False  # 416, in the error shape, from the app
        first, length, status = 0, stat.st_size, 200
        described += [(b"accept-ranges", b"bytes"), (b"last-modified", last_modified.encode())]
        if wanted is not None:
            part = single_part(wanted, stat.st_size)
            if part is None or scope["method"] == "HEAD":
                return False
            first, length, status = part[0], part[1] - part[0] + 1, 206
            content_range = f"bytes {part[0]}-{part[1]}/{stat.st_size}"
            described.append((b"content-range", content_range.encode()))
        described.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": status, "headers": described})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
        else:
            await send_file(context.part(DownloadIndex), fd, first, length, scope, receive, send)
        return True


async def send_file(
    index: DownloadIndex,
    fd: int,
    first: int,
    length: int,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """The bytes: at once when small; by the kernel where the server offers zero-copy
    sends; else in pieces read off the event loop (their size shared out by `index`),
    until the client goes."""
    if length <= WHOLE_BYTES:
        await send({"type": "http.response.body", "body": platform.read_at(fd, length, first)})
        return
    if zero_copy.offered(scope):
        await zero_copy.send_open_file(send, fd, first, length)
        return
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.create_task(watch())
    index.sending += 1
    try:
        offset, end = first, first + length
        while offset < end and not gone.is_set():
            size = min(index.piece_bytes(), end - offset)
            piece: bytes | bytearray | None = platform.read_cached(fd, size, offset)
            if piece is None:
                piece = await asyncio.to_thread(platform.read_at, fd, size, offset)
            else:
                await asyncio.sleep(0)  # read without a pause: let the other downloads run
            if not piece:
                raise OSError(f"the file ended {end - offset} bytes early")
            offset += len(piece)
            message: Message = {"type": "http.response.body", "body": piece}
            message["more_body"] = offset < end
            await send(message)
    finally:
        index.sending -= 1
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


class CheckAnswer:
    """What a check (`X-ODS-Check`) gets: the X-Accel-Redirect answer with the version
    (the SHA1 of the ETag) as `X-ODS-Version`, or an empty 403 for any other answer."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.refused = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            etag = headers.get(b"etag", b"").strip(b'"')
            if (
                message["status"] != 200
                or b"x-accel-redirect" not in headers
                or not VERSION.fullmatch(etag)
            ):
                self.refused = True
                await send_refusal(self.send)
                return
            message = {**message, "headers": [*message["headers"], (b"x-ods-version", etag)]}
        elif self.refused:
            return  # the body of an answer replaced by the 403
        await self.send(message)


async def send_refusal(send: Send) -> None:
    headers = [(b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def safe_name(name: str) -> str | None:
    """The filename when it is already safe and normalised, else None (the app says why)."""
    try:
        return name if check_filename(name) == name else None
    except OdsError:
        return None


def needs_decision(context: Context) -> bool:
    settings = context.settings
    return settings.share_requires_login or settings.jamf_jwt_public_key is not None


def dict_of(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def single_part(wanted: str, size: int) -> tuple[int, int] | None:
    """The first and last byte of a `bytes=a-b` range of one part, or None."""
    spec = wanted.removeprefix("bytes=")
    if "," in spec:
        return None
    start, _, end = spec.partition("-")
    if not start:
        return max(0, size - int(end)), size - 1
    return int(start), min(int(end), size - 1) if end else size - 1


def etag_matches(if_none_match: str, sha1: str) -> bool:
    """If-None-Match compares weakly: `*`, `"<sha1>"` and `W/"<sha1>"` all match."""
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == f'"{sha1}"':
            return True
    return False


def attachment(filename: str) -> str:
    """The Content-Disposition of a download, as Starlette's FileResponse makes it."""
    quoted = quote(filename)
    if quoted == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename*=utf-8''{quoted}"
