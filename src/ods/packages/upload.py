"""Parse a multipart upload as it streams, straight into a hashed staging file.

No spooled copy: the `file` part's bytes go from the socket through the
multipart parser into `DigestingWriter`. Small fields (`stage`, `replace`)
are collected in memory with a size cap. On any error the staging file is
removed and the error says what was wrong.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from ods.core.errors import InvalidInput, PayloadTooLarge
from ods.packages.digest import DigestingWriter, FileDigests
from ods.packages.naming import check_filename

MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 16
DISPOSITION_PARAM = re.compile(r';\s*([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


@dataclass
class UploadForm:
    filename: str
    digests: FileDigests
    staged: Path
    fields: dict[str, str] = field(default_factory=dict)


class _Part:
    def __init__(self) -> None:
        self.headers: dict[str, bytes] = {}
        self.name = ""
        self.filename: str | None = None
        self.value = bytearray()


class UploadParser:
    """Drives python-multipart's streaming parser; one instance per request."""

    def __init__(
        self,
        boundary: bytes,
        staging_path: Callable[[], Path],
        max_size: int,
        check_field: Callable[[str, str], object] | None = None,
    ) -> None:
        self._staging_path = staging_path
        self._check_field = check_field
        self._max_size = max_size
        self._writer: DigestingWriter | None = None
        self._filename: str | None = None
        self._fields: dict[str, str] = {}
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._parts = 0
        self._field_bytes = 0
        self._ended = False
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )

    @property
    def received(self) -> int:
        """The bytes of the file received so far."""
        return 0 if self._writer is None else self._writer.size

    def _on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise InvalidInput(f"Too many form fields (more than {MAX_PARTS}).")
        self._part = _Part()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        name = self._header_field.decode("latin-1").strip().lower()
        self._part.headers[name] = bytes(self._header_value).strip()
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        disposition = self._part.headers.get("content-disposition")
        if not disposition:
            raise InvalidInput("A form part has no Content-Disposition header.")
        options = disposition_params(disposition)
        self._part.name = options.get("name", "")
        raw_filename = options.get("filename")
        if raw_filename is None:
            return
        if self._part.name != "file":
            raise InvalidInput(
                f"Unexpected file in form field {self._part.name!r}; send it as 'file'."
            )
        if self._writer is not None:
            raise InvalidInput("Send one file per upload.")
        self._filename = check_filename(raw_filename)
        self._part.filename = self._filename
        self._writer = DigestingWriter(self._staging_path())

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part.filename is not None:
            assert self._writer is not None
            self._writer.buffer(memoryview(data)[start:end])
            if self._writer.size > self._max_size:
                raise PayloadTooLarge(
                    f"The upload is larger than the limit of {self._max_size} bytes "
                    "(ODS_MAX_UPLOAD_SIZE)."
                )
            return
        self._field_bytes += end - start
        if self._field_bytes > MAX_FIELD_BYTES:
            raise InvalidInput("The form fields besides the file are too large.")
        self._part.value += data[start:end]

    def _on_part_end(self) -> None:
        if self._part.filename is None and self._part.name:
            value = self._part.value.decode("utf-8", "replace").strip()
            if self._check_field is not None:
                self._check_field(self._part.name, value)
            self._fields[self._part.name] = value

    def _on_end(self) -> None:
        self._ended = True

    async def feed(self, stream: AsyncIterator[bytes]) -> UploadForm:
        try:
            async for data in stream:
                if not data:
                    continue
                try:
                    self._parser.write(data)
                except MultipartParseError as exc:
                    raise InvalidInput(f"The multipart body is malformed: {exc}.") from None
                if self._writer is not None:
                    await self._writer.drain()
            if not self._ended:
                raise InvalidInput(
                    "The multipart body ended early (truncated upload); nothing was saved."
                )
            if self._writer is None or self._filename is None:
                raise InvalidInput("The upload has no 'file' part.")
            digests = await self._writer.finish()
        except BaseException:
            if self._writer is not None:
                await self._writer.abort()
            raise
        return UploadForm(
            filename=self._filename,
            digests=digests,
            staged=self._writer.path,
            fields=self._fields,
        )


def disposition_params(header: bytes) -> dict[str, str]:
    """The parameters of a part's Content-Disposition header, names in lower case.

    Browsers and curl send filenames as raw UTF-8. A quoted value loses its quotes
    and the backslash escapes of `"` and `\\`, nothing else: a filename that carries
    a path (`C:\\Users\\x.pkg`) is kept whole, so it is refused rather than
    silently shortened. The `name*=` form is ignored, as RFC 7578 asks.
    """
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(
            "A form part's Content-Disposition header is not valid UTF-8; "
            "send the filename in UTF-8."
        ) from None
    params: dict[str, str] = {}
    for match in DISPOSITION_PARAM.finditer(text):
        key, value = match.group(1).lower(), match.group(2).strip()
        if "*" in key:
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace("\\\\", "\\").replace('\\"', '"')
        params.setdefault(key, value)
    return params


def multipart_boundary(content_type: str | None) -> bytes:
    ctype, options = parse_options_header(content_type)
    if ctype != b"multipart/form-data":
        raise InvalidInput(
            "Send the package as multipart/form-data with a 'file' part "
            "(curl -F file=@NoMAD.pkg -F stage=Prod …)."
        )
    boundary = options.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise InvalidInput("The multipart Content-Type has no valid boundary.")
    return boundary
