"""The Jamf Pro API, as much of it as package records need.

An access token comes from `POST /api/oauth/token` (an API client's id and
secret, form-encoded, `grant_type=client_credentials`); it is kept until
shortly before `expires_in` runs out and renewed once when Jamf Pro answers
401 anyway. Records are found by `fileName` with an RSQL filter on
`GET /api/v1/packages`, made with `POST /api/v1/packages`, changed with
`PUT /api/v1/packages/{id}` (the whole record) and removed with
`DELETE /api/v1/packages/{id}`. Every request has a deadline, no redirect is
followed, an answer is read up to a cap, and what is read is validated
before anything is taken from it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

ANSWER_CAP = 1024 * 1024  # a page of 100 package records is well under this
TOKEN_MARGIN = 30.0  # renew this many seconds before Jamf Pro says the token expires
PAGE_SIZE = 100
MAX_PAGES = 200  # 20,000 records: past any real instance; a runaway answer stops here
JAMF_ID = r"^-?[0-9]{1,19}$"


class JamfError(Exception):
    """Jamf Pro could not be reached, refused, or answered something unusable."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Record(BaseModel):
    # A record is sent back whole on update: what Jamf Pro adds beyond these fields is kept.
    model_config = ConfigDict(extra="allow")


class TokenAnswer(_Answer):
    access_token: str = Field(min_length=1, max_length=8192)
    expires_in: int = Field(ge=1, le=86400 * 366)


class Created(_Answer):
    id: str = Field(pattern=JAMF_ID)


class PackageRecord(_Record):
    id: str = Field(pattern=JAMF_ID)
    packageName: str = Field(max_length=1024)
    fileName: str = Field(max_length=1024)
    hashType: str | None = Field(default=None, max_length=32)
    hashValue: str | None = Field(default=None, max_length=256)


class PackagePage(_Answer):
    totalCount: int = Field(ge=0)
    results: list[PackageRecord]


class Category(_Answer):
    id: str = Field(pattern=JAMF_ID)
    name: str = Field(max_length=1024)


class CategoryPage(_Answer):
    totalCount: int = Field(ge=0)
    results: list[Category]


A = TypeVar("A", bound=BaseModel)


def rsql_equals(field: str, value: str) -> str:
    """`field=="value"`, the value quoted and its quotes and backslashes escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{field}=="{escaped}"'


def record_body(filename: str, category_id: str, sha512: str) -> dict[str, Any]:
    """A package record as Jamf Pro requires it: its required fields, and the checksum."""
    return {
        "packageName": filename,
        "fileName": filename,
        "categoryId": category_id,
        "priority": 10,
        "fillUserTemplate": False,
        "rebootRequired": False,
        "osInstall": False,
        "suppressUpdates": False,
        "suppressFromDock": False,
        "suppressEula": False,
        "suppressRegistration": False,
        "hashType": "SHA_512",
        "hashValue": sha512,
    }


@dataclass
class Token:
    value: str
    good_until: float


def _describe(response: httpx.Response, body: bytes) -> str:
    """What Jamf Pro said, in one line: its errors' descriptions when it gave any."""
    text = body[:2000].decode("utf-8", "replace")
    try:
        parsed = httpx.Response(200, content=body).json()
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("errors"), list):
        parts = [
            str(error.get("description") or error.get("code"))
            for error in parsed["errors"][:5]
            if isinstance(error, dict)
        ]
        if parts:
            text = "; ".join(parts)
    elif isinstance(parsed, dict) and parsed.get("error"):
        text = str(parsed.get("error_description") or parsed["error"])
    text = " ".join(text.split())[:300]
    return f"Jamf Pro answered {response.status_code}" + (f": {text}" if text else "")


class JamfClient:
    """One Jamf Pro instance, with its API client's credentials; use as `async with`."""

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float,
        verify: Any = True,
        token: Token | None = None,
    ) -> None:
        self.base = url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.token = token
        self.renewals = 0
        self._http = httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False, verify=verify
        )

    async def __aenter__(self) -> JamfClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def _send(
        self, method: str, path: str, *, bearer: str | None = None, **kwargs: Any
    ) -> tuple[httpx.Response, bytes]:
        headers = {"Accept": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            request = self._http.build_request(method, self.base + path, headers=headers, **kwargs)
            response = await self._http.send(request, stream=True)
            try:
                body = bytearray()
                async for part in response.aiter_raw():
                    body += part
                    if len(body) > ANSWER_CAP:
                        raise JamfError(f"Jamf Pro's answer to {method} {path} is too long")
            finally:
                await response.aclose()
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            # InvalidURL and ValueError (an IDNA error, say): the url cannot be used at all.
            raise JamfError(f"cannot reach Jamf Pro: {type(exc).__name__} {exc}".strip()) from None
        if 300 <= response.status_code < 400:
            raise JamfError(
                f"Jamf Pro answered {response.status_code} (a redirect, not followed): check "
                "the url",
                response.status_code,
            )
        return response, bytes(body)

    @staticmethod
    def _parse(model: type[A], response: httpx.Response, body: bytes, what: str) -> A:
        try:
            return model.model_validate_json(body)
        except ValidationError:
            raise JamfError(
                f"Jamf Pro's answer to {what} is not what its API describes", response.status_code
            ) from None

    async def new_token(self) -> Token:
        response, body = await self._send(
            "POST",
            "/api/oauth/token",
            data={
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "grant_type": "client_credentials",
            },
        )
        if response.status_code != 200:
            raise JamfError(_describe(response, body), response.status_code)
        answer = self._parse(TokenAnswer, response, body, "the token request")
        lifetime = max(answer.expires_in - TOKEN_MARGIN, answer.expires_in / 2)
        self.token = Token(answer.access_token, time.monotonic() + lifetime)
        return self.token

    async def call(
        self, method: str, path: str, *, ok: tuple[int, ...], **kwargs: Any
    ) -> tuple[httpx.Response, bytes]:
        """An API call with the token; a 401 gets one new token and one more try."""
        token = self.token
        if token is None or token.good_until <= time.monotonic():
            token = await self.new_token()
        response, body = await self._send(method, path, bearer=token.value, **kwargs)
        if response.status_code == 401:
            self.renewals += 1
            token = await self.new_token()
            response, body = await self._send(method, path, bearer=token.value, **kwargs)
        if response.status_code not in ok:
            raise JamfError(_describe(response, body), response.status_code)
        return response, body

    async def find_package(self, filename: str) -> PackageRecord | None:
        response, body = await self.call(
            "GET",
            "/api/v1/packages",
            ok=(200,),
            params={"page": 0, "page-size": 10, "filter": rsql_equals("fileName", filename)},
        )
        page = self._parse(PackagePage, response, body, "the package look-up")
        exact = [record for record in page.results if record.fileName == filename]
        return exact[0] if exact else None

    async def list_packages(self) -> list[PackageRecord]:
        records: list[PackageRecord] = []
        for number in range(MAX_PAGES):
            response, body = await self.call(
                "GET",
                "/api/v1/packages",
                ok=(200,),
                params={"page": number, "page-size": PAGE_SIZE, "sort": "id:asc"},
            )
            page = self._parse(PackagePage, response, body, "the package list")
            records.extend(page.results)
            if len(page.results) < PAGE_SIZE or len(records) >= page.totalCount:
                return records
        raise JamfError(f"Jamf Pro lists more than {MAX_PAGES * PAGE_SIZE} packages")

    async def category_id(self, name: str | None) -> str:
        """The id of the category of that name; "-1" (none) when no name is given."""
        if not name:
            return "-1"
        response, body = await self.call(
            "GET",
            "/api/v1/categories",
            ok=(200,),
            params={"page": 0, "page-size": 10, "filter": rsql_equals("name", name)},
        )
        page = self._parse(CategoryPage, response, body, "the category look-up")
        for category in page.results:
            if category.name == name:
                return category.id
        raise JamfError(f"Jamf Pro has no category named {name!r}")

    async def create_package(self, record: dict[str, Any]) -> str:
        response, body = await self.call("POST", "/api/v1/packages", ok=(200, 201), json=record)
        return self._parse(Created, response, body, "the new package record").id

    async def update_package(self, jamf_id: str, changes: dict[str, Any]) -> bool:
        """Change fields of a record, keeping the others as an admin set them (Jamf Pro's
        PUT takes the whole record); False when Jamf Pro has no record of that id."""
        response, body = await self.call("GET", f"/api/v1/packages/{jamf_id}", ok=(200, 404))
        if response.status_code == 404:
            return False
        current = self._parse(PackageRecord, response, body, "the package record")
        record = current.model_dump(exclude_none=True) | dict(current.model_extra or {})
        record.pop("id", None)
        response, _ = await self.call(
            "PUT", f"/api/v1/packages/{jamf_id}", ok=(200, 201, 404), json=record | changes
        )
        return response.status_code != 404

    async def delete_package(self, jamf_id: str) -> bool:
        """Remove a record; False when Jamf Pro has no record of that id (any more)."""
        response, _ = await self.call("DELETE", f"/api/v1/packages/{jamf_id}", ok=(200, 204, 404))
        return response.status_code != 404
