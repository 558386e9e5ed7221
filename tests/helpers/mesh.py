"""A mesh of in-process ODS apps that reach each other through httpx.ASGITransport,
and what the mesh tests do with its nodes: link them, wait for a package, read it back."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from ods.app import create_app
from ods.core.config import load_settings
from ods.core.context import Context
from ods.mesh.peers import links
from ods.mesh.protocol import signing
from ods.mesh.protocol.client import (
    PEER_API,
    ChunkTooLarge,
    PeerLink,
    PeerRefused,
    PeerUnreachable,
    describe_http_error,
    refusal_text,
)
from ods.mesh.state import mesh_state
from tests.helpers.api import NEW_PASSWORD, TEST_DATABASE_KEY

T = TypeVar("T")


Tamper = Callable[[httpx.Request, httpx.Response], Awaitable[httpx.Response]]


class MeshTransport(httpx.AsyncBaseTransport):
    """Routes each request to the app whose host it names; unknown hosts are unreachable.

    `tamper`, when set, sees every answer and may replace it: someone on the path.
    """

    def __init__(self) -> None:
        self.routes: dict[str, httpx.ASGITransport] = {}
        self.down: set[str] = set()
        self.tamper: Tamper | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        transport = self.routes.get(host)
        if transport is None or host in self.down:
            raise httpx.ConnectError(f"connection refused by {host}", request=request)
        response = await transport.handle_async_request(request)
        if self.tamper is not None:
            response = await self.tamper(request, response)
        return response


class StreamedConnection:
    """Chunk runs read through the node's httpx client, for apps that have no socket.

    The receiving thread calls it like a socket connection; each call is run
    on the test's event loop, where the in-process apps live.
    """

    def __init__(self, context: Context, loop: asyncio.AbstractEventLoop) -> None:
        self.context = context
        self.loop = loop
        self.response: httpx.Response | None = None
        self.parts: AsyncIterator[bytes] | None = None
        self.left = b""

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def request(self, url: str, headers: Mapping[str, str], length: int) -> None:
        self.close()
        try:
            self._run(self._open(url, headers, length))
        except httpx.HTTPError as exc:
            raise PeerUnreachable(describe_http_error(url, exc)) from None

    async def _open(self, url: str, headers: Mapping[str, str], length: int) -> None:
        request = self.context.http.build_request("GET", url, headers=dict(headers))
        response = await self.context.http.send(request, stream=True)
        if response.status_code != 200:
            body = await response.aread()
            await response.aclose()
            raise PeerRefused(f"refused {url}: {refusal_text(response.status_code, body)}")
        declared = int(response.headers["content-length"])
        if declared != length:
            await response.aclose()
            raise ChunkTooLarge(f"{url} declared {declared} bytes, not {length}")
        self.response = response
        self.parts = response.aiter_raw()

    async def _next(self) -> bytes:
        assert self.parts is not None
        return await anext(self.parts, b"")

    def read_into(self, view: memoryview) -> int:
        if not self.left:
            try:
                self.left = self._run(self._next())
            except httpx.HTTPError as exc:
                raise PeerUnreachable(describe_http_error("peer", exc)) from None
        count = min(len(view), len(self.left))
        view[:count] = self.left[:count]
        self.left = self.left[count:]
        return count

    def abort(self) -> None:
        pass

    def close(self) -> None:
        response, self.response, self.parts, self.left = self.response, None, None, b""
        if response is not None and not self.loop.is_closed():
            asyncio.run_coroutine_threadsafe(response.aclose(), self.loop)


@dataclass
class Node:
    name: str
    url: str
    app: FastAPI
    admin: httpx.AsyncClient

    @property
    def context(self) -> Context:
        context: Context = self.app.state.context
        return context

    async def about(self) -> dict[str, object]:
        response = await self.admin.get("/api/admin/about")
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    async def register_with(self, other: Node) -> httpx.Response:
        about = await other.about()
        return await self.admin.post(
            "/api/admin/register",
            json={"url": other.url, "iss_id": about["iss"], "key": about["key"]},
        )


class Mesh:
    def __init__(self, root: Path, stack: contextlib.AsyncExitStack) -> None:
        self.root = root
        self.stack = stack
        self.transport = MeshTransport()
        self.nodes: dict[str, Node] = {}

    async def add(
        self,
        name: str,
        *,
        stage: str = "Dev",
        configure: bool = True,
        site_of: Node | None = None,
        **settings_: Any,
    ) -> Node:
        """A node called `name`; with `site_of`, another process of that node's site (its
        data dir and database), already configured by it."""
        home = self.root / (site_of.name if site_of is not None else name)
        settings = load_settings(
            data_dir=home,
            database_url=f"sqlite:///{home / 'ods.db'}",
            database_key=TEST_DATABASE_KEY,
            admin_password=NEW_PASSWORD,
            **settings_,
        )
        app = create_app(settings)
        await self.stack.enter_async_context(app.router.lifespan_context(app))
        context: Context = app.state.context
        await context.http.aclose()
        context.http = httpx.AsyncClient(transport=self.transport, timeout=10.0)
        loop = asyncio.get_running_loop()
        mesh_state(context).connect = lambda link: StreamedConnection(context, loop)
        url = f"http://{name}.test"
        self.transport.routes[f"{name}.test"] = httpx.ASGITransport(app=app)
        admin = await self.stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=url)
        )
        login = await admin.post(
            "/api/auth/login", json={"username": "admin", "password": NEW_PASSWORD}
        )
        assert login.status_code == 200, login.text
        admin.headers["Authorization"] = f"Bearer {login.json()['token']}"
        node = Node(name=name, url=url, app=app, admin=admin)
        if configure and site_of is None:
            update = await admin.post(
                "/api/admin/about/update", json={"name": name, "url": url, "stage": stage}
            )
            assert update.status_code == 201, update.text
        self.nodes[name] = node
        return node


async def wait_public(node: Node, name: str, within: float = 15.0) -> dict[str, object]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await node.admin.get(f"/api/admin/packages/{name}")
        if response.status_code == 200 and response.json()["status"] == "Public":
            body: dict[str, object] = response.json()
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{name} not Public on {node.name}: {response.text[:300]}")
        await asyncio.sleep(0.05)


async def share_get(node: Node, name: str) -> httpx.Response:
    """`GET /share/{name}` on the node, as a Mac would download it."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=node.app), base_url=node.url
    ) as client:
        return await client.get(f"/share/{name}")


async def served_sha256(node: Node, name: str) -> str:
    response = await share_get(node, name)
    assert response.status_code == 200
    return hashlib.sha256(response.content).hexdigest()


async def link_all(nodes: list[Node]) -> None:
    for a, b in itertools.pairwise(nodes):
        response = await a.register_with(b)
        assert response.status_code == 201, response.text


async def peer_call(
    mesh: Mesh,
    sender: Node,
    receiver: Node,
    method: str,
    path: str,
    body: Any = None,
    link: PeerLink | None = None,
) -> httpx.Response:
    """A request to `receiver`'s peer API signed with `sender`'s link (or with `link`, one
    `sender` had before): what `sender` may send."""
    if link is None:
        link = await links.link_by_iss(sender.context, receiver.context.iss)
    assert link is not None, f"{sender.name} is not registered with {receiver.name}"
    content = b"" if body is None else json.dumps(body).encode()
    headers = signing.sign(
        link.secret,
        method=method,
        target=PEER_API + path,
        body=content,
        sender=sender.context.iss,
        receiver=receiver.context.iss,
    )
    headers["Content-Type"] = "application/json"
    async with httpx.AsyncClient(transport=mesh.transport) as raw:
        return await raw.request(
            method, f"{receiver.url}{PEER_API}{path}", content=content, headers=headers
        )


async def events_of(node: Node, kind: str) -> list[dict[str, Any]]:
    response = await node.admin.get("/api/admin/events", params={"kind": kind})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
