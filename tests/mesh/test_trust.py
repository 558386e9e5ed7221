"""Mesh trust: answers, origin statements, pinned keys, the trust policy, no link takeover.

Each test plays one attacker against real apps: someone on the path who
rewrites answers, a registered peer that lies about another origin, a
forged stage change or delete, a stranger holding a server's key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import uuid as uuidlib
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update

from ods.core.context import Context
from ods.core.models import Package, Tombstone
from ods.core.stages import Stage
from ods.mesh import serving
from ods.mesh.peers import links
from ods.mesh.protocol import signing
from ods.mesh.protocol.sealing import seal
from ods.mesh.protocol.wire import ChunkDigests, PackageManifest, PeerRegistration
from ods.mesh.reconcile import reconcile_with
from ods.packages import service
from ods.packages.statements import sign_unsigned
from ods.trust.statements import (
    DeleteStatement,
    PackageStatement,
    SignedStatement,
    StageStatement,
    chunk_list_digest,
    sign,
)
from tests.helpers.mesh import Mesh, Node, events_of, link_all, peer_call, wait_public
from tests.helpers.packages import MIB, stored_uuid, uploaded


async def package_on(node: Node, name: str) -> dict[str, Any] | None:
    response = await node.admin.get(f"/api/admin/packages/{name}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stage_statement_of(node: Node, uuid: str) -> SignedStatement:
    async with node.context.db.session() as session:
        stored = await session.scalar(select(Package.stage_statement).where(Package.uuid == uuid))
    assert stored is not None
    return SignedStatement.model_validate_json(stored)


async def eventually(check: Any, within: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await check()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition did not hold in time")
        await asyncio.sleep(0.05)


async def test_a_package_arrives_with_its_origins_verified_statement(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    c = await mesh.add("ods-c")
    await link_all([a, b, c])  # a - b - c: c hears of it through b
    await uploaded(a.admin, "Tool.pkg", os.urandom(MIB + 5))

    for node in (a, b, c):
        body = await wait_public(node, "Tool.pkg")
        assert body["origin_iss"] == a.context.iss
        assert body["origin_verified"] is True
    trust_a = (await a.admin.get("/api/admin/trust")).json()
    pinned_on_c = {
        key["iss"]: key for key in (await c.admin.get("/api/admin/trust")).json()["keys"]
    }
    # c never registered with a: it pinned a's key from the statement b relayed.
    assert pinned_on_c[a.context.iss]["fingerprint"] == trust_a["fingerprint"]
    assert pinned_on_c[a.context.iss]["via_iss"] == b.context.iss


async def test_answers_rewritten_on_the_path_are_refused(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await link_all([a, b])
    tampered: list[str] = []

    async def rewrite(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.host != "ods-a.test" or "/api/ods/packages/" not in request.url.path:
            return response
        if "/chunks" in request.url.path:
            return response
        body = json.loads(await response.aread())
        body["sha256"] = "0" * 64
        body["file_size"] = 12
        tampered.append(request.url.path)
        content = json.dumps(body).encode()
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        headers["Content-Length"] = str(len(content))
        return httpx.Response(
            response.status_code, headers=headers, stream=httpx.ByteStream(content)
        )

    mesh.transport.tamper = rewrite
    await uploaded(a.admin, "Tool.pkg", os.urandom(300000))

    async def refused() -> str | None:
        peers = (await b.admin.get("/api/admin/registered_ods")).json()["items"]
        error: str | None = peers[0]["last_error"]
        return error if error and "not signed" in error else None

    error = await eventually(refused)
    assert "altered or replayed" in error
    assert tampered
    assert await package_on(b, "Tool.pkg") is None
    # Once the path is clean again, the genuine package arrives intact.
    mesh.transport.tamper = None
    arrived = await eventually(lambda: package_on(b, "Tool.pkg"), within=60.0)
    assert arrived["sha256"] == (await package_on(a, "Tool.pkg") or {})["sha256"]


def forged_manifest(
    manifest: PackageManifest, origin: str, key: Ed25519PrivateKey, data: bytes
) -> PackageManifest:
    """The manifest of other bytes under the same uuid and name, signed by `key` as `origin`."""
    chunks = [
        ChunkDigests(
            index=i,
            sha1=hashlib.sha1(data[i * MIB : (i + 1) * MIB]).hexdigest(),  # noqa: S324
            sha256=hashlib.sha256(data[i * MIB : (i + 1) * MIB]).hexdigest(),
        )
        for i in range(-(-len(data) // MIB))
    ]
    statement = PackageStatement.model_construct(
        origin=origin,
        uuid=manifest.uuid,
        filename=manifest.filename,
        file_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        sha1=hashlib.sha1(data).hexdigest(),  # noqa: S324
        chunks_sha256=chunk_list_digest(c.sha256 for c in chunks),
        chunks_sha1=chunk_list_digest(c.sha1 for c in chunks),
        stage=manifest.stage,
        created_ts=manifest.created_ts,
    )
    return manifest.model_copy(
        update={
            "file_size": statement.file_size,
            "sha256": statement.sha256,
            "sha1": statement.sha1,
            "chunks": chunks,
            "statement": sign(key, statement),
            "origin_iss": origin,
        }
    )


async def test_a_peer_cannot_pass_its_bytes_off_as_another_origins(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    m = await mesh.add("ods-m")
    await link_all([a, b, m])
    body = await uploaded(a.admin, "Tool.pkg", os.urandom(300000))
    await wait_public(b, "Tool.pkg")
    await wait_public(m, "Tool.pkg")
    # A fourth server, c, has only b and the liar m as peers, and has not seen a's key.
    c = await mesh.add("ods-c")
    real = serving.manifest
    liar_key = Ed25519PrivateKey.generate()

    async def lying(context: Context, uuid: str) -> PackageManifest:
        manifest = await real(context, uuid)
        if context is m.context:
            return forged_manifest(manifest, a.context.iss, liar_key, b"#!/bin/sh\nrm -rf /\n")
        return manifest

    monkeypatch.setattr(serving, "manifest", lying)
    # c registers with the liar first: m's forged manifest is what c reads first.
    assert (await c.register_with(m)).status_code == 201
    assert (await c.register_with(b)).status_code == 201
    got = await wait_public(c, "Tool.pkg", within=30.0)
    # c pinned a's key from whichever statement it saw first. If it saw m's forgery first,
    # b's genuine package is then refused and c has nothing; it never has m's bytes.
    assert got["sha256"] == body["sha256"]
    assert got["origin_verified"] is True


async def test_a_forged_origin_key_for_a_known_server_is_refused(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    m = await mesh.add("ods-m")
    await link_all([a, b])
    assert (await m.register_with(b)).status_code == 201
    # b pinned a's key at registration. m offers a package "from a", signed by m, under a
    # uuid of the form made before uuids were bound to their origin (a bound one of m's
    # is refused before any key is looked at).
    monkeypatch.setattr(service, "new_bound_uuid", lambda origin: (str(uuidlib.uuid4()), None))
    data = os.urandom(2000)
    body = await uploaded(m.admin, "Payload.pkg", data)
    real = serving.manifest
    liar_key = Ed25519PrivateKey.generate()

    async def lying(context: Context, uuid: str) -> PackageManifest:
        manifest = await real(context, uuid)
        if context is m.context:
            return forged_manifest(manifest, a.context.iss, liar_key, data)
        return manifest

    monkeypatch.setattr(serving, "manifest", lying)
    # m's own upload announced itself; b fetches, reads the forged statement and refuses.
    refused = await eventually(lambda: events_of(b, "trust.refused"))
    assert refused[0]["data"]["subject"] == "package"
    assert refused[0]["data"]["uuid"] == body["uuid"]
    assert "not the key of" in refused[0]["data"]["reason"]
    key_refused = await events_of(b, "trust.key_refused")
    assert key_refused[0]["data"]["iss"] == a.context.iss
    assert await package_on(b, "Payload.pkg") is None


async def test_forged_and_replayed_stage_changes_are_refused(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await link_all([a, b])
    body = await uploaded(a.admin, "Tool.pkg", os.urandom(3000), stage="Prod")
    uuid = stored_uuid(body["uuid"])
    await wait_public(b, "Tool.pkg")
    # A genuine stage change travels with a's signature.
    statements = []
    for stage in ("Test", "Dev"):
        changed = await a.admin.patch("/api/admin/packages/Tool.pkg", json={"stage": stage})
        assert changed.status_code == 200

        async def followed(stage: str = stage) -> bool:
            return (await package_on(b, "Tool.pkg") or {}).get("stage") == stage

        await eventually(followed)
        statements.append(await stage_statement_of(a, uuid))
    to_test = statements[0]
    # A stage change signed by a key that is not a's, sent by a (a compromised relay).
    forged = sign(
        Ed25519PrivateKey.generate(),
        StageStatement(signer_iss=a.context.iss, uuid=uuid, stage=Stage.PROD, changed_ms=2**40),
    )
    note = {"uuid": uuid, "stage": "Prod", "stage_statement": forged.model_dump()}
    assert (await peer_call(mesh, a, b, "POST", "/notify", note)).status_code == 202
    # No statement at all.
    bare = {"uuid": uuid, "stage": "Prod"}
    assert (await peer_call(mesh, a, b, "POST", "/notify", bare)).status_code == 202
    # a's genuine statement of the move to Test, replayed after the move to Dev.
    replayed = {"uuid": uuid, "stage": "Test", "stage_statement": to_test.model_dump()}
    assert (await peer_call(mesh, a, b, "POST", "/notify", replayed)).status_code == 202
    refused = await eventually(lambda: events_of(b, "trust.refused"))
    reasons = sorted(event["data"]["reason"] for event in refused)
    assert {event["data"]["subject"] for event in refused} == {"stage"}
    assert len(reasons) == 3
    assert any("later stage change is known" in reason for reason in reasons)
    assert any("not the key of" in reason for reason in reasons)
    assert any("no signed statement" in reason for reason in reasons)
    assert (await package_on(b, "Tool.pkg") or {})["stage"] == "Dev"


async def test_forged_deletes_are_refused_and_the_package_stays(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await link_all([a, b])
    body = await uploaded(a.admin, "Tool.pkg", os.urandom(3000))
    await wait_public(b, "Tool.pkg")
    card: dict[str, Any] = {
        "uuid": stored_uuid(body["uuid"]),
        "filename": "Tool.pkg",
        "reason": "deleted",
        "created_ts": 1795700000,
    }
    unsigned = await peer_call(mesh, a, b, "POST", "/forget", card)
    assert unsigned.status_code == 403
    assert unsigned.json()["error"] == "statement_refused"
    forged = sign(
        Ed25519PrivateKey.generate(),
        DeleteStatement(
            signer_iss=a.context.iss,
            uuid=stored_uuid(body["uuid"]),
            filename="Tool.pkg",
            reason="deleted",
            created_ts=1795700000,
        ),
    )
    wrong_key = await peer_call(
        mesh, a, b, "POST", "/forget", card | {"statement": forged.model_dump()}
    )
    assert wrong_key.status_code == 403
    assert "not the key of" in wrong_key.json()["message"]
    assert (await package_on(b, "Tool.pkg") or {})["status"] == "Public"
    # A genuine delete, signed by a, is taken.
    assert (await a.admin.delete("/api/admin/packages/Tool.pkg")).status_code == 204

    async def gone() -> bool:
        return await package_on(b, "Tool.pkg") is None

    await eventually(gone)


async def test_a_listed_trust_policy_refuses_other_origins_and_says_why(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await link_all([a, b])
    policy = await b.admin.put("/api/admin/trust", json={"policy": "listed", "origins": ["c" * 32]})
    assert policy.status_code == 200, policy.text
    assert policy.json()["policy"] == "listed"
    body = await uploaded(a.admin, "Tool.pkg", os.urandom(3000))

    refused = await eventually(lambda: events_of(b, "trust.refused"))
    assert refused[0]["data"]["uuid"] == body["uuid"]
    assert "not a trusted origin" in refused[0]["data"]["reason"]
    assert await package_on(b, "Tool.pkg") is None
    listed = {"policy": "listed", "origins": [a.context.iss]}
    assert (await b.admin.put("/api/admin/trust", json=listed)).status_code == 200
    changed = await events_of(b, "trust.policy_changed")
    assert [event["data"]["origins"] for event in changed] == [[a.context.iss], ["c" * 32]]
    # Listing a as an origin lets its next package in.
    await uploaded(a.admin, "Next.pkg", os.urandom(3000))
    arrived = await wait_public(b, "Next.pkg")
    assert arrived["origin_iss"] == a.context.iss


async def test_a_bad_trust_update_is_refused(mesh: Mesh) -> None:
    b = await mesh.add("ods-b")
    bad = await b.admin.put("/api/admin/trust", json={"policy": "listed", "origins": ["nope"]})
    assert bad.status_code == 422
    unknown = await b.admin.put("/api/admin/trust", json={"policy": "some"})
    assert unknown.status_code == 422
    assert (await b.admin.delete(f"/api/admin/trust/keys/{'d' * 32}")).status_code == 404


async def test_holding_a_servers_key_does_not_take_over_a_registered_peer(mesh: Mesh) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await link_all([a, b])
    about_b = await b.about()
    # The attacker knows b's key (from its About page) and a's iss, not the a-b link secret.
    secret = secrets.token_bytes(32)
    registration = PeerRegistration(
        iss=a.context.iss,
        name="ods-a",
        url="http://evil.test",
        stage=Stage.DEV,
        firewalled_mode=False,
        sealed_secret=seal(
            secret, str(about_b["key"]), sender=a.context.iss, receiver=b.context.iss
        ),
    )
    content = registration.model_dump_json().encode()
    headers = signing.sign(
        secret,
        method="POST",
        target="/api/ods/register",
        body=content,
        sender=a.context.iss,
        receiver=b.context.iss,
    )
    async with httpx.AsyncClient(transport=mesh.transport) as raw:
        answer = await raw.post(
            f"{b.url}/api/ods/register",
            content=content,
            headers=headers | {"Content-Type": "application/json"},
        )
    assert answer.status_code == 409, answer.text
    refused = await events_of(b, "peer.registration_refused")
    assert refused[0]["data"]["url"] == "http://evil.test"
    peers = (await b.admin.get("/api/admin/registered_ods")).json()["items"]
    assert [peer["url"] for peer in peers] == [a.url]
    # The real a still reaches b.
    await uploaded(a.admin, "Still.pkg", os.urandom(2000))
    await wait_public(b, "Still.pkg")


async def test_versions_from_before_signing_get_their_statements(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await mesh.add("ods-a")
    b = await mesh.add("ods-b")
    await link_all([a, b])
    # Uploads made before this version had random uuids, not bound to their origin.
    monkeypatch.setattr(service, "new_bound_uuid", lambda origin: (str(uuidlib.uuid4()), None))
    body = await uploaded(a.admin, "Old.pkg", os.urandom(MIB + 3))
    await wait_public(b, "Old.pkg")
    assert (await a.admin.delete("/api/admin/packages/Old.pkg")).status_code == 204
    await uploaded(a.admin, "Older.pkg", os.urandom(2000))
    await wait_public(b, "Older.pkg")
    # Make both servers look as they did before this version: nothing signed.
    for node in (a, b):
        async with node.context.db.transaction() as session:
            await session.execute(update(Package).values(statement=None))
            await session.execute(update(Tombstone).values(statement=None))
    async with a.context.db.transaction() as session:
        await session.execute(update(Package).values(origin_iss=None))
    assert (await package_on(b, "Older.pkg") or {})["origin_verified"] is False

    # a signs its own uploads and deletes at start-up...
    assert await sign_unsigned(a.context) == 2
    async with a.context.db.session() as session:
        tombstone = await session.get(Tombstone, stored_uuid(body["uuid"]))
    assert tombstone is not None
    assert tombstone.statement is not None
    mine = await package_on(a, "Older.pkg")
    assert mine is not None
    assert (mine["origin_iss"], mine["origin_verified"]) == (a.context.iss, True)
    # ...and b takes a's statement of the copy it has at the next reconciliation.
    link = await links.link_by_iss(b.context, a.context.iss)
    assert link is not None
    await reconcile_with(b.context, link)
    theirs = await package_on(b, "Older.pkg")
    assert theirs is not None
    assert (theirs["origin_iss"], theirs["origin_verified"]) == (a.context.iss, True)


async def test_a_bound_uuid_is_never_signed_again_without_its_nonce(
    mesh: Mesh, caplog: pytest.LogCaptureFixture
) -> None:
    """A version of this release is signed with its row; should its statement be lost (a
    restored or edited database), start-up signing leaves it unsigned and says so rather
    than signing a statement no peer would take."""
    a = await mesh.add("ods-a")
    await uploaded(a.admin, "Tool.pkg", os.urandom(2000))
    async with a.context.db.transaction() as session:
        await session.execute(update(Package).values(statement=None))
    assert await sign_unsigned(a.context) == 0
    package = await package_on(a, "Tool.pkg")
    assert package is not None
    assert package["origin_verified"] is False
    async with a.context.db.session() as session:
        uuid = await session.scalar(select(Package.uuid))
    assert f"Tool.pkg ({uuid}) has lost its signed statement" in caplog.text
