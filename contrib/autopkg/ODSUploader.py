#!/usr/local/autopkg/python
#
# ODSUploader: an AutoPkg processor that uploads a recipe's package to ODS
# (Open Distribution Server). MIT licensed, like ODS.
"""Upload the recipe's package to an ODS server, unless it is there already.

The package (`pkg_path`, a flat package, disk image or any other file) is
looked up on ODS by its filename through the admin API's package list. When
ODS has that filename with the same SHA-256, nothing is sent. When the
content differs, the package is uploaded with `replace=true` (unless
ODS_REPLACE is false). The upload streams from disk: the file is never read
into memory whole.

Standard library only, since AutoPkg runs its own Python: urllib with TLS
verified against the system's trust store, or against ODS_CA_FILE alone
when it is set.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

from autopkglib import Processor, ProcessorError

__all__ = ["ODSUploader"]

STAGES = ("Dev", "Test", "Prod")
BLOCK_SIZE = 1024 * 1024
PAGE_SIZE = 500
MAX_ANSWER_BYTES = 16 * 1024 * 1024
# A package with the same SHA-256 in one of these is the same version: not sent again.
# (Failed serves nothing; Withdrawn is at a stage this server does not take.)
SAME_VERSION_STATUSES = ("Public", "Publishing", "Downloading")
SUMMARY = "odsuploader_summary_result"
# macOS keeps its root certificates here too; AutoPkg's Python may have no CA file of its own.
SYSTEM_CA_FILES = ("/etc/ssl/cert.pem",)
TRUE = ("true", "yes", "1", "on")
FALSE = ("false", "no", "0", "off", "")


class _KeepsEarlyAnswers(http.client.HTTPConnection):
    """A connection that stops sending, without failing, once the server hangs up.

    ODS answers some uploads before it has read them (a refused token or role,
    a file over its size limit or too big for its disk) and then closes the
    connection. Sending on would fail with a broken pipe and lose that answer;
    this keeps it, so the error ODS gave is the error the admin sees.
    """

    body_refused = False

    def send(self, data: Any) -> None:
        if self.body_refused:
            return
        try:
            super().send(data)
        except (BrokenPipeError, ConnectionResetError):
            self.body_refused = True


class _TLSKeepsEarlyAnswers(_KeepsEarlyAnswers, http.client.HTTPSConnection):
    pass


class _PlainHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_KeepsEarlyAnswers, req)


class _TLSHandler(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self.tls_context = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_TLSKeepsEarlyAnswers, req, context=self.tls_context)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: an upload cannot follow one, and the token must not."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def flag(value: Any, name: str) -> bool:
    """A boolean input from a plist boolean or a string such as "true" or "False"."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ProcessorError(f"{name} must be true or false, not {value!r}.")


def seconds(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if not number > 0:
        raise ProcessorError(f"{name} must be a number of seconds above 0, not {value!r}.")
    return number


def sha256_of(path: str) -> str:
    """The file's SHA-256, read one block at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(BLOCK_SIZE):
            digest.update(block)
    return digest.hexdigest()


def tls_context(ca_file: str) -> ssl.SSLContext:
    """Certificates and host names checked: against ca_file alone, or the system's roots."""
    if ca_file:
        if not os.path.isfile(ca_file):
            raise ProcessorError(f"ODS_CA_FILE {ca_file!r} is not a file.")
        try:
            return ssl.create_default_context(cafile=ca_file)
        except (ssl.SSLError, OSError) as error:
            raise ProcessorError(f"ODS_CA_FILE {ca_file!r} is not a PEM CA file: {error}") from None
    context = ssl.create_default_context()
    if context.cert_store_stats()["x509_ca"] == 0:
        for candidate in SYSTEM_CA_FILES:
            if os.path.isfile(candidate):
                context.load_verify_locations(cafile=candidate)
    return context


def multipart_head(boundary: str, filename: str, stage: str, replace: bool) -> bytes:
    """The form up to the file's bytes: stage, replace, then the file part's headers.

    The filename goes as UTF-8 in a quoted string, `"` and `\\` escaped, as ODS reads it.
    """
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
    fields = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in (("stage", stage), ("replace", "true" if replace else "false"))
    )
    return (
        f"{fields}--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def file_blocks(path: str, size: int) -> Iterator[bytes]:
    """Exactly `size` bytes of the file, one block at a time."""
    left = size
    with open(path, "rb") as file:
        while left > 0:
            block = file.read(min(BLOCK_SIZE, left))
            if not block:
                raise ProcessorError(f"{path} became shorter while it was being uploaded.")
            left -= len(block)
            yield block


class ODSClient:
    """The few admin API calls the processor makes, errors turned into ProcessorError."""

    def __init__(self, url: str, token: str, ca_file: str, timeout: float) -> None:
        if not url.startswith(("https://", "http://")):
            raise ProcessorError(f"ODS_URL must start with https:// (or http://), not {url!r}.")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        context = tls_context(ca_file) if self.url.startswith("https://") else None
        handlers: list[Any] = [_PlainHandler, _NoRedirects]
        if context is not None:
            handlers.append(_TLSHandler(context))
        self.opener = urllib.request.build_opener(*handlers)

    def call(
        self,
        method: str,
        path: str,
        body: Iterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - self.url is http(s), checked above
            self.url + path,
            data=body,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                "User-Agent": "ODSUploader (AutoPkg)",
                **(headers or {}),
            },
        )
        what = f"{method} {path.split('?')[0]}"
        try:
            with self.opener.open(request, timeout=self.timeout) as answer:
                raw = answer.read(MAX_ANSWER_BYTES)
        except urllib.error.HTTPError as error:
            with error:  # its connection, closed once the answer is read
                message = self.refusal(what, error)
            raise ProcessorError(message) from None
        except urllib.error.URLError as error:
            raise ProcessorError(self.unreachable(what, error.reason)) from None
        except (OSError, http.client.HTTPException) as error:
            raise ProcessorError(self.unreachable(what, error)) from None
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise ProcessorError(
                f"ODS at {self.url} answered {what} with something other than a JSON "
                f"object: {raw[:200]!r}. Is ODS_URL the address of an ODS server?"
            )
        return parsed

    def refusal(self, what: str, error: urllib.error.HTTPError) -> str:
        """ODS's own error (its JSON `error` and `message`), or what else came back."""
        if 300 <= error.code < 400:
            return (
                f"ODS at {self.url} answered {what} with HTTP {error.code}, a redirect to "
                f"{error.headers.get('Location')!r}. Set ODS_URL to the address it redirects "
                "to (https://…)."
            )
        try:
            raw = error.read(64 * 1024)
        except (OSError, http.client.HTTPException):
            raw = b""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return f"ODS refused {what} (HTTP {error.code} {body.get('error')}): {body['message']}"
        text = raw[:200].decode("utf-8", "replace").strip()
        return f"ODS at {self.url} answered {what} with HTTP {error.code} {error.reason}: {text!r}"

    def unreachable(self, what: str, reason: object) -> str:
        if isinstance(reason, ssl.SSLCertVerificationError):
            return (
                f"The TLS certificate of {self.url} did not verify ({reason.verify_message}) "
                f"during {what}. If ODS uses a certificate from your own CA, set ODS_CA_FILE "
                "to that CA's PEM file."
            )
        return f"Could not talk to ODS at {self.url} ({what}): {reason}"

    def find(self, filename: str) -> dict[str, Any] | None:
        """The package of exactly this filename, through the list's filename search."""
        offset = 0
        while True:
            query = urllib.parse.urlencode(
                {"search": filename, "limit": PAGE_SIZE, "offset": offset}
            )
            page = self.call("GET", f"/api/admin/packages?{query}")
            items = page.get("items")
            if not isinstance(items, list):
                raise ProcessorError(f"ODS's package list has no items: {str(page)[:200]}")
            for item in items:
                if isinstance(item, dict) and item.get("filename") == filename:
                    return item
            offset += len(items)
            if not items or offset >= int(page.get("total", 0)):
                return None

    def upload(
        self, path: str, filename: str, size: int, stage: str, replace: bool
    ) -> dict[str, Any]:
        """POST /api/admin/upload as multipart/form-data, streamed from disk."""
        boundary = f"ods-{uuid.uuid4().hex}"
        head = multipart_head(boundary, filename, stage, replace)
        tail = f"\r\n--{boundary}--\r\n".encode()

        def body() -> Iterator[bytes]:
            yield head
            yield from file_blocks(path, size)
            yield tail

        return self.call(
            "POST",
            "/api/admin/upload",
            body(),
            {
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(head) + size + len(tail)),
            },
        )


class ODSUploader(Processor):
    description = __doc__
    input_variables = {
        "pkg_path": {
            "required": True,
            "description": "The package to upload, as the pkg recipe left it.",
        },
        "ODS_URL": {
            "required": True,
            "description": "The ODS server's address, for example https://ods.example.com.",
        },
        "ODS_API_TOKEN": {
            "required": True,
            "description": "An ODS API token (ods_…) of a package_manager or admin user.",
        },
        "ODS_STAGE": {
            "required": True,
            "description": "The stage of a new upload: Dev, Test or Prod.",
        },
        "ODS_REPLACE": {
            "required": False,
            "default": True,
            "description": (
                "When ODS has the filename with other content, replace it (true) or "
                "stop with an error (false)."
            ),
        },
        "ODS_CA_FILE": {
            "required": False,
            "default": "",
            "description": (
                "A PEM file of the CA that signed ODS's certificate; when set, only it is "
                "trusted. Default: the system's trust store."
            ),
        },
        "ODS_TIMEOUT": {
            "required": False,
            "default": "300",
            "description": "Seconds to wait on ODS for any one step (connect, send, answer).",
        },
    }
    output_variables = {
        "ods_package_url": {"description": "Where clients download the package."},
        "ods_package_id": {"description": "The package's id on ODS."},
        "ods_package_uuid": {"description": "The uuid of the version on ODS."},
        "ods_package_stage": {"description": "The package's stage on ODS."},
        "ods_package_sha1": {"description": "The package's SHA1, as ODS computed it."},
        "ods_package_sha256": {"description": "The package's SHA-256, as ODS computed it."},
        "ods_package_sha512": {
            "description": "The package's SHA-512, when the ODS server reports one."
        },
        "ods_uploaded": {"description": "True when the package was sent to ODS."},
        "ods_replaced": {"description": "True when the upload replaced other content."},
        SUMMARY: {"description": "The upload, for AutoPkg's run summary."},
    }

    def main(self) -> None:
        self.env.pop(SUMMARY, None)
        path = str(self.env.get("pkg_path") or "")
        url = str(self.env.get("ODS_URL") or "").strip()
        token = str(self.env.get("ODS_API_TOKEN") or "").strip()
        stage = str(self.env.get("ODS_STAGE") or "").strip()
        replace = flag(self.env.get("ODS_REPLACE", True), "ODS_REPLACE")
        timeout = seconds(self.env.get("ODS_TIMEOUT", "300"), "ODS_TIMEOUT")
        ca_file = os.path.expanduser(str(self.env.get("ODS_CA_FILE") or ""))
        filename = self.check(path, url, token, stage)

        if url.startswith("http://"):
            self.output("WARNING: ODS_URL is http://: the API token travels unencrypted.")
        size = os.path.getsize(path)
        self.output(f"Computing the SHA-256 of {path} ({size} bytes)", verbose_level=2)
        local_sha256 = sha256_of(path)
        client = ODSClient(url, token, ca_file, timeout)

        existing = client.find(filename)
        if (
            existing is not None
            and existing.get("sha256") == local_sha256
            and existing.get("status") in SAME_VERSION_STATUSES
        ):
            self.output(
                f"{filename} is on ODS already with the same SHA-256 "
                f"(stage {existing.get('stage')}, {existing.get('status')}); not uploading."
            )
            self.publish_outputs(url, existing, uploaded=False, replaced=False)
            return
        if existing is not None and not replace and existing.get("status") != "Failed":
            raise ProcessorError(
                f"ODS has {filename} already with other content (SHA-256 "
                f"{existing.get('sha256')}, this file {local_sha256}). Set ODS_REPLACE to "
                "true to replace it, or give the new package another filename."
            )

        self.output(f"Uploading {filename} to {url} at stage {stage}")
        answer = client.upload(path, filename, size, stage, replace)
        if answer.get("sha256") != local_sha256:
            raise ProcessorError(
                f"ODS computed SHA-256 {answer.get('sha256')} for {filename}, but the file "
                f"has {local_sha256}: it changed during the upload or was altered on the "
                "way. Run the recipe again."
            )
        replaced = bool(answer.get("replaced"))
        self.output(
            f"{'Replaced' if replaced else 'Uploaded'} {filename}: "
            f"SHA-256 {local_sha256}, stage {answer.get('stage')}"
        )
        self.publish_outputs(url, answer, uploaded=True, replaced=replaced)
        self.env[SUMMARY] = {
            "summary_text": "The following packages were uploaded to ODS:",
            "report_fields": ["pkg_path", "filename", "stage", "sha256", "replaced", "url"],
            "data": {
                "pkg_path": path,
                "filename": filename,
                "stage": str(answer.get("stage")),
                "sha256": local_sha256,
                "replaced": str(replaced),
                "url": self.env["ods_package_url"],
            },
        }

    def check(self, path: str, url: str, token: str, stage: str) -> str:
        """The inputs make sense before anything is read or sent; the package's filename."""
        if not url.startswith(("https://", "http://")):
            raise ProcessorError(f"ODS_URL must start with https:// (or http://), not {url!r}.")
        if not token:
            raise ProcessorError("ODS_API_TOKEN is empty: create an API token in ODS first.")
        if stage not in STAGES:
            raise ProcessorError(f"ODS_STAGE must be Dev, Test or Prod, not {stage!r}.")
        if os.path.isdir(path):
            raise ProcessorError(
                f"pkg_path {path!r} is a directory (a bundle package); ODS stores files: "
                "upload a flat package or a disk image."
            )
        if not os.path.isfile(path):
            raise ProcessorError(f"pkg_path {path!r} is not a file.")
        filename = os.path.basename(path)
        if any(ord(char) < 32 or ord(char) == 127 for char in filename):
            raise ProcessorError(f"The filename {filename!r} has control characters.")
        return filename

    def publish_outputs(
        self, url: str, package: dict[str, Any], *, uploaded: bool, replaced: bool
    ) -> None:
        filename = str(package.get("filename"))
        self.env["ods_package_url"] = (
            f"{url.rstrip('/')}/share/{urllib.parse.quote(filename, safe='')}"
        )
        self.env["ods_package_id"] = package.get("id")
        self.env["ods_package_uuid"] = str(package.get("uuid") or "")
        self.env["ods_package_stage"] = str(package.get("stage") or "")
        for digest in ("sha1", "sha256", "sha512"):
            self.env[f"ods_package_{digest}"] = str(package.get(digest) or "")
        self.env["ods_uploaded"] = uploaded
        self.env["ods_replaced"] = replaced
        for name in ("ods_package_url", "ods_package_sha256", "ods_package_stage"):
            self.output(f"{name}: {self.env[name]}", verbose_level=2)


if __name__ == "__main__":
    PROCESSOR = ODSUploader()
    PROCESSOR.execute_shell()
