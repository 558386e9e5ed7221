"""Mesh trust against real processes: an attacker on the path, and a hostile peer.

The first tests put a tampering proxy between two real `ods serve` servers:
A reaches B only through it (A registered with B at the proxy's url), so
every answer B gives A passes the attacker, who rewrites manifests, injects
a tombstone into inventories, flips bytes in chunk runs or replays an earlier
answer. Nothing tampered is ever published, promoted or deleted on A; the
package arrives intact through another peer, or once the path is clean.

The others register a hostile peer (its own process, speaking the peer
protocol with ODS's own signing code) with a real victim, and answer the
victim's requests with lies: forged origin signatures, a second key for a
known origin, another origin's uuid with other bytes, manifests that break
the victim's limits, an endless body, a gzip bomb, a drip. Each case checks
what the victim does, that it does it once (no retry loop, no traceback),
and that its resident memory stays within 50 MiB of its idle level.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ods.core.crypto import iss_for_key
from ods.core.uuids import public_uuid
from ods.mesh.protocol.wire import PackageManifest
from ods.trust.statements import DeleteStatement, fingerprint, public_bytes, public_text, sign
from tests.helpers.manifests import SHELL_SCRIPT, manifest_of
from tests.helpers.packages import MIB, stored_uuid
from tests.helpers.processes.hostile_peer import HostilePeer, hostile_peer
from tests.helpers.processes.memory import MemoryWatch
from tests.helpers.processes.mesh import Node, mesh_of, random_file
from tests.helpers.processes.tampering import (
    FlipChunkBytes,
    InjectTombstone,
    ReplayManifest,
    RewriteManifests,
    TamperingProxy,
)

pytestmark = pytest.mark.e2e

T = TypeVar("T")

NOT_SIGNED = "for this request: it was altered or replayed on the way, or another server answered"

# The victim of the hostile peer: a 1 GiB upload limit, so that a manifest is read
# only up to 16 KiB + 1024 chunks of 160 bytes, and a short stall (the rate floor's window).
VICTIM_ENV = {"ODS_MAX_UPLOAD_SIZE": "1G", "ODS_FETCH_STALL_SECONDS": "2"}
MAX_UPLOAD = 1024**3
MANIFEST_LIMIT = 16 * 1024 + 1024 * 160
RSS_BOUND = 50 * MIB
SETTLE_SECONDS = 2.0  # long enough for a retry loop to show: the first back-off is ~1 s


async def wait_for(what: str, seconds: float, check: Callable[[], Awaitable[T | None]]) -> T:
    """The first truthy result of `check`, polled; fails saying `what` did not happen."""
    deadline = time.monotonic() + seconds
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def prepare(nodes: list[Node]) -> None:
    for node in nodes:
        await node.login()
        await node.configure("Dev")


def last_error_with(node: Node, peer: str, text: str) -> Callable[[], Awaitable[str | None]]:
    async def check() -> str | None:
        error = (await node.peer_record(peer))["last_error"]
        return error if error and text in error else None

    return check


def no_traceback(node: Node) -> None:
    assert node.server is not None
    assert "Traceback" not in node.server.output(), node.server.output()


# An attacker on the path between A and B.


async def test_rewritten_manifests_are_refused_and_the_package_arrives_once_the_path_is_clean(
    tmp_path: Path,
) -> None:
    """Rewrite manifests: a shell script's size, digests and chunk digests in B's
    manifest, the script's bytes for chunk runs. A refuses each rewritten manifest as
    not signed by B for its request (B's last error on A), asks for no chunk and has
    no package row; once the proxy stops, the package arrives intact, and only it."""
    with mesh_of(tmp_path, 2) as nodes:
        await prepare(nodes)
        a, b = nodes
        rewrite = RewriteManifests(SHELL_SCRIPT)
        async with TamperingProxy(b.port, rewrite) as link:
            await a.register_with(b, url=link.url)
            path = tmp_path / "Tool.pkg"
            sha256 = random_file(path, 2 * MIB + 5)
            await b.upload(path)
            error = await wait_for(
                "A never refused a rewritten manifest",
                30,
                last_error_with(a, "ods-1", "altered or replayed"),
            )
            uuid = str((await b.package("Tool.pkg") or {})["uuid"])
            assert (
                f"the answer to /packages/{stored_uuid(uuid)} is not signed by ods-1 {NOT_SIGNED}"
                in error
            )
            assert rewrite.rewritten >= 1
            assert await a.packages() == []
            assert await a.served_sha256("Tool.pkg") is None
            assert not [request for request in link.answered if "/chunks" in request]

            rewrite.active = False
            await a.wait_served("Tool.pkg", sha256, seconds=60)
        [package] = await a.packages()
        assert (package["uuid"], package["sha256"], package["status"]) == (uuid, sha256, "Public")
        assert package["origin_verified"] is True
        available = await a.events("package.available")
        assert [event["data"]["sha256"] for event in available] == [sha256]
        assert await a.events("package.failed") == []
        no_traceback(a)


async def test_a_tombstone_injected_into_an_inventory_deletes_nothing(tmp_path: Path) -> None:
    """Rewrite inventories: a tombstone, with a forged delete statement in B's name, for
    Keep.pkg, which A has. A refuses the inventory as not signed by B for its request
    and applies none of it: Keep.pkg stays Public and served byte for byte, with no
    package.deleted event and no trust.refused one (the statements inside were never
    read). Once the proxy stops, B's Other.pkg arrives intact through it, and Keep.pkg
    is still there."""
    with mesh_of(tmp_path, 2, ODS_RECONCILE_INTERVAL="10") as nodes:
        await prepare(nodes)
        a, b = nodes
        keep, other = tmp_path / "Keep.pkg", tmp_path / "Other.pkg"
        keep_sha256, other_sha256 = random_file(keep, MIB + 3), random_file(other, MIB + 7)
        kept = await a.upload(keep)
        await b.upload(other)
        now = int(time.time())
        forged = sign(
            Ed25519PrivateKey.generate(),
            DeleteStatement(
                signer_iss=(await b.about())["iss"],
                uuid=stored_uuid(kept["uuid"]),
                filename="Keep.pkg",
                reason="deleted",
                created_ts=now,
            ),
        )
        inject = InjectTombstone(
            {
                "uuid": stored_uuid(kept["uuid"]),
                "filename": "Keep.pkg",
                "reason": "deleted",
                "created_ts": now,
                "statement": forged.model_dump(),
            }
        )
        async with TamperingProxy(b.port, inject) as link:
            await a.register_with(b, url=link.url)
            error = await wait_for(
                "A never refused a rewritten inventory",
                30,
                last_error_with(a, "ods-1", "altered or replayed"),
            )
            assert f"the answer to /packages is not signed by ods-1 {NOT_SIGNED}" in error
            assert inject.injected >= 1
            package = await a.package("Keep.pkg")
            assert package is not None
            assert (package["uuid"], package["status"]) == (kept["uuid"], "Public")
            assert await a.served_sha256("Keep.pkg") == keep_sha256
            assert await a.events("package.deleted") == []

            inject.active = False
            await a.wait_served("Other.pkg", other_sha256, seconds=60)
        found = {p["filename"]: (p["uuid"], p["sha256"], p["status"]) for p in await a.packages()}
        assert found["Keep.pkg"] == (kept["uuid"], keep_sha256, "Public")
        assert found["Other.pkg"][1:] == (other_sha256, "Public")
        assert await a.served_sha256("Keep.pkg") == keep_sha256
        assert await a.events("package.deleted") == []
        # The inventory was refused whole: its statements were never looked at.
        assert await a.events("trust.refused") == []
        no_traceback(a)


async def test_flipped_chunk_bytes_are_never_published_and_another_peer_serves_them(
    tmp_path: Path,
) -> None:
    """Flip bytes in chunk runs: every chunk from B fails its SHA-256, three times, and
    the fetch is retried: the package stays Downloading on A, nothing is served at
    /share. Once A is registered with C too, the package arrives intact from C while
    B's link still flips every chunk."""
    with mesh_of(tmp_path, 3) as nodes:
        await prepare(nodes)
        a, b, c = nodes
        await c.register_with(b)
        path = tmp_path / "Tool.pkg"
        sha256 = random_file(path, 3 * MIB + 5)
        await b.upload(path)
        await c.wait_served("Tool.pkg", sha256)
        flip = FlipChunkBytes()
        async with TamperingProxy(b.port, flip) as link:
            await a.register_with(b, url=link.url)
            assert a.server is not None
            server = a.server

            async def gave_up_on_b() -> bool:
                return "from ods-1 failed verification 3 times (SHA-256 mismatch)" in (
                    server.output()
                )

            await wait_for("A never gave up on B's chunks", 30, gave_up_on_b)
            [package] = await a.packages()
            assert (package["sha256"], package["status"]) == (sha256, "Downloading")
            assert await a.served_sha256("Tool.pkg") is None
            assert await a.events("package.available") == []

            await a.register_with(c)
            await a.wait_served("Tool.pkg", sha256, seconds=60)
            assert flip.flipped_runs >= 3
        [available] = await a.events("package.available")
        assert (available["data"]["peer"], available["data"]["sha256"]) == ("ods-2", sha256)
        no_traceback(a)


async def test_a_replayed_manifest_is_refused_and_the_replacement_arrives(tmp_path: Path) -> None:
    """Replay: A (firewalled, so it hears of B's packages only by polling through the
    proxy) asks for version 1's manifest; the proxy records the answer and drops the
    chunk run. B's admin replaces the package with version 2; the proxy plays the
    recorded answer back to A's next request for version 1's manifest (and holds A's
    polls until then). A refuses it as not signed by B for that request: version 1 is
    never published on A, and version 2 arrives intact and is A's only package."""
    with mesh_of(tmp_path, 2, ODS_POLL_INTERVAL="5") as nodes:
        await prepare(nodes)
        a, b = nodes
        async with a.client() as client:
            hidden = await client.post(
                "/api/admin/about/update", json={"firewalled_mode": "Enabled"}
            )
        assert hidden.status_code == 201, hidden.text
        (tmp_path / "v1").mkdir()
        (tmp_path / "v2").mkdir()
        random_file(tmp_path / "v1" / "Tool.pkg", 2 * MIB + 1)
        v2_sha256 = random_file(tmp_path / "v2" / "Tool.pkg", MIB + 9)
        v1 = await b.upload(tmp_path / "v1" / "Tool.pkg")
        replay = ReplayManifest()
        async with TamperingProxy(b.port, replay) as link:
            await a.register_with(b, url=link.url)
            await asyncio.wait_for(replay.dropped.wait(), 30)
            v2 = await b.upload(tmp_path / "v2" / "Tool.pkg", replace=True)
            assert v2["replaced_uuid"] == v1["uuid"]
            replay.release.set()
            await asyncio.wait_for(replay.replayed.wait(), 30)
            error = await wait_for(
                "A never refused the replayed manifest",
                30,
                last_error_with(a, "ods-1", "altered or replayed"),
            )
            assert (
                f"the answer to /packages/{stored_uuid(v1['uuid'])} is not signed by ods-1" in error
            )
            assert await a.served_sha256("Tool.pkg") is None

            await a.wait_served("Tool.pkg", v2_sha256, seconds=60)
            assert link.answered.count(f"GET /api/ods/packages/{stored_uuid(v1['uuid'])}") >= 2
        assert [(p["uuid"], p["status"]) for p in await a.packages()] == [(v2["uuid"], "Public")]
        available = await a.events("package.available")
        assert [event["data"]["uuid"] for event in available] == [v2["uuid"]]
        no_traceback(a)


# A hostile peer registered with a real victim.


@dataclass(frozen=True)
class Lie:
    """A manifest the hostile peer answers with, and the victim's exact reason to refuse it."""

    uuid: str
    body: bytes
    reason: str
    # The trust.refused event names the file whenever the manifest named it acceptably.
    filename: str | None = None
    key_refused: dict[str, str | None] | None = None  # the trust.key_refused event's data


def manifest_json(manifest: PackageManifest, **changes: Any) -> bytes:
    body = manifest.model_dump(mode="json") | changes
    return json.dumps(body).encode()


def key_iss(key: Ed25519PrivateKey) -> str:
    return iss_for_key(public_bytes(public_text(key)))


def lie(case: str, hostile: HostilePeer, victim: dict[str, str]) -> Lie:
    """The hostile peer's manifest for `case`; `victim` is the victim's trust page."""
    data = SHELL_SCRIPT
    cannot_read = f"{hostile.name} sent a package description ODS cannot read"
    match case:
        case "forged origin signature":
            # An origin the victim never saw: its iss is made from a key the forger lacks.
            origin, forger = key_iss(Ed25519PrivateKey.generate()), Ed25519PrivateKey.generate()
            manifest = manifest_of(data, origin=origin, key=forger)
            forged = fingerprint(public_text(forger))
            return Lie(
                manifest.uuid,
                manifest.model_dump_json().encode(),
                "the origin's statement does not hold: "
                f"it is signed with key {forged}, which is not the key of {origin}",
                filename="Tool.pkg",
                key_refused={
                    "iss": origin,
                    "fingerprint": forged,
                    "pinned_fingerprint": "the key its iss is made from",
                    "via_iss": hostile.iss,
                },
            )
        case "a second key for the victim itself":
            manifest = manifest_of(data, origin=victim["iss"], key=hostile.key)
            return Lie(
                manifest.uuid,
                manifest.model_dump_json().encode(),
                "the origin's statement does not hold: "
                "it claims to come from this server, but is not signed with its key",
                filename="Tool.pkg",
                key_refused={
                    "iss": victim["iss"],
                    "fingerprint": fingerprint(public_text(hostile.key)),
                    "pinned_fingerprint": victim["fingerprint"],
                    "via_iss": hostile.iss,
                },
            )
        case "file_size over ODS_MAX_UPLOAD_SIZE":
            size = 2 * MAX_UPLOAD
            manifest = manifest_of(data, file_size=size, origin=hostile.iss, key=hostile.key)
            return Lie(
                manifest.uuid,
                manifest.model_dump_json().encode(),
                f"it is {size} bytes, over this server's limit of {MAX_UPLOAD} bytes",
                filename="Tool.pkg",
            )
        case "a chunk list of the wrong length":
            manifest = manifest_of(os.urandom(3 * MIB), origin=hostile.iss, key=hostile.key)
            chunks = [chunk.model_dump() for chunk in manifest.chunks[:2]]
            return Lie(
                manifest.uuid,
                manifest_json(manifest, chunks=chunks),
                f"it lists 2 chunks; {3 * MIB} bytes make 3",
                filename="Tool.pkg",
            )
        case "created_ts 10**18":
            manifest = manifest_of(data, origin=hostile.iss, key=hostile.key)
            body = manifest_json(manifest, created_ts=10**18)
            return Lie(manifest.uuid, body, cannot_read)
        case "created_ts in the year 2242":
            manifest = manifest_of(data, created_ts=2**33, origin=hostile.iss, key=hostile.key)
            return Lie(
                manifest.uuid,
                manifest.model_dump_json().encode(),
                "its creation time is in the future",
                filename="Tool.pkg",
            )
        case "a body that is not JSON":
            uuid = manifest_of(data, origin=hostile.iss, key=hostile.key).uuid
            body = b"<html><body><h1>It works!</h1></body></html>"
            return Lie(uuid, body, cannot_read)
    raise AssertionError(case)


@dataclass
class Victim:
    node: Node
    hostile: HostilePeer
    trust: dict[str, str]  # its iss, fingerprint and public key

    async def fetches(self, outcome: str) -> float:
        return await self.node.metric("ods_jobs_total", {"kind": "fetch", "outcome": outcome})

    async def manifest_requests(self, uuid: str) -> int:
        seen, _ = await self.hostile.seen()
        return seen.count(f"GET /api/ods/packages/{uuid}")


async def victim_of(node: Node, hostile: HostilePeer) -> Victim:
    """`node` with the hostile peer registered, the way a new peer registers."""
    about = await node.about()
    await hostile.register_with(node.url, about["iss"], about["key"])
    async with node.client() as client:
        response = await client.get("/api/admin/trust")
    assert response.status_code == 200, response.text
    trust: dict[str, str] = response.json()
    return Victim(node, hostile, trust | {"iss": about["iss"]})


async def idle_memory(node: Node) -> MemoryWatch:
    watch = MemoryWatch(node.pid)
    await asyncio.to_thread(watch.idle)
    return watch


def report(case: str, watch: MemoryWatch) -> None:
    print(
        f"\n{case}: RSS idle {watch.idle_rss / MIB:.1f} MiB, peak {watch.peak_rss / MIB:.1f} "
        f"MiB, growth {watch.growth / MIB:.1f} MiB ({watch.samples} samples)"
    )
    assert watch.growth < RSS_BOUND


async def refused_once(victim: Victim, uuid: str) -> list[dict[str, Any]]:
    """The victim's trust.refused events once its fetch of `uuid` failed, checked to have
    failed once: one request for the manifest, no retry, one refusal, no traceback."""

    async def failed() -> bool:
        return await victim.fetches("failed") == 1

    await wait_for("the fetch never failed", 20, failed)
    await asyncio.sleep(SETTLE_SECONDS)
    assert await victim.fetches("failed") == 1
    assert await victim.fetches("retry") == 0
    assert await victim.manifest_requests(uuid) == 1
    refused = await victim.node.events("trust.refused")
    assert len(refused) == 1, refused
    no_traceback(victim.node)
    return refused


REFUSED = [
    "forged origin signature",
    "a second key for the victim itself",
    "file_size over ODS_MAX_UPLOAD_SIZE",
    "a chunk list of the wrong length",
    "created_ts 10**18",
    "created_ts in the year 2242",
    "a body that is not JSON",
]


@pytest.mark.parametrize("case", REFUSED)
async def test_a_hostile_peers_manifest_is_refused_once_and_nothing_is_published(
    tmp_path: Path, case: str
) -> None:
    """Each lie ends the same way: a trust.refused event with the exact reason (and a
    trust.key_refused one for a key that is not the origin's), the fetch failed once,
    with one request for the manifest and no retry, no package row, and the victim's
    memory within 50 MiB of idle."""
    with mesh_of(tmp_path, 1, **VICTIM_ENV) as [node], hostile_peer(tmp_path) as hostile:
        await prepare([node])
        victim = await victim_of(node, hostile)
        told = lie(case, hostile, victim.trust)
        await hostile.answer(f"/api/ods/packages/{told.uuid}", "signed", told.body)
        await hostile.serve_run(told.uuid, SHELL_SCRIPT)
        watch = await idle_memory(node)
        with watch:
            await hostile.notify(victim.trust["iss"], told.uuid)
            [refused] = await refused_once(victim, told.uuid)
        report(case, watch)
        assert refused["data"] == {
            "subject": "package",
            "uuid": public_uuid(told.uuid),
            "filename": told.filename,
            "peer": hostile.name,
            "peer_iss": hostile.iss,
            "reason": told.reason,
        }
        key_refused = [event["data"] for event in await node.events("trust.key_refused")]
        assert key_refused == ([told.key_refused] if told.key_refused else [])
        assert await node.packages() == []
        assert await node.served_sha256("Tool.pkg") is None


async def test_a_second_key_for_a_registered_peer_is_refused(tmp_path: Path) -> None:
    """A statement "from" a real peer the victim registered with, signed with the
    hostile peer's key: trust.refused and trust.key_refused for that peer; the fetch
    also asks the real peer, which lacks the package, and fails once; nothing is
    published."""
    with mesh_of(tmp_path, 2, **VICTIM_ENV) as nodes, hostile_peer(tmp_path) as hostile:
        await prepare(nodes)
        node, origin = nodes
        await node.register_with(origin)
        origin_iss = (await origin.about())["iss"]
        victim = await victim_of(node, hostile)
        manifest = manifest_of(SHELL_SCRIPT, origin=origin_iss, key=hostile.key)
        await hostile.answer(
            f"/api/ods/packages/{manifest.uuid}", "signed", manifest.model_dump_json().encode()
        )
        await hostile.serve_run(manifest.uuid, SHELL_SCRIPT)
        watch = await idle_memory(node)
        with watch:
            await hostile.notify(victim.trust["iss"], manifest.uuid)
            [refused] = await refused_once(victim, manifest.uuid)
        report("a second key for a registered peer", watch)
        forged = fingerprint(public_text(hostile.key))
        assert refused["data"]["reason"] == (
            "the origin's statement does not hold: "
            f"it is signed with key {forged}, which is not the key of {origin_iss}"
        )
        [key_refused] = await node.events("trust.key_refused")
        assert key_refused["data"] == {
            "iss": origin_iss,
            "fingerprint": forged,
            "pinned_fingerprint": "the key its iss is made from",
            "via_iss": hostile.iss,
        }
        assert node.server is not None
        assert "ods-1: it does not have it" in node.server.output()
        assert await node.packages() == []


async def test_another_origins_uuid_with_other_bytes_is_refused(tmp_path: Path) -> None:
    """The hostile peer, registered with the real origin too, reads the origin's genuine
    statement of Tool.pkg and sends it with a manifest of other bytes under that uuid:
    trust.refused (the size differs from what the origin signed), the fetch failed once,
    nothing published. Then the victim registers with the origin and gets the genuine
    package; a later claim of that uuid signed by the hostile peer as its own is not
    even fetched, and the genuine bytes stay served."""
    with mesh_of(tmp_path, 2, **VICTIM_ENV) as nodes, hostile_peer(tmp_path) as hostile:
        await prepare(nodes)
        node, origin = nodes
        origin_about = await origin.about()
        path = tmp_path / "Tool.pkg"
        sha256 = random_file(path, MIB + 11)
        real = await origin.upload(path)
        uuid = stored_uuid(real["uuid"])
        await hostile.register_with(origin.url, origin_about["iss"], origin_about["key"])
        genuine = PackageManifest.model_validate_json(
            await hostile.get(origin_about["iss"], f"/packages/{uuid}")
        )
        assert genuine.statement is not None
        other_bytes = manifest_of(SHELL_SCRIPT, uuid=uuid, origin=hostile.iss, key=hostile.key)
        lying = other_bytes.model_copy(
            update={"statement": genuine.statement, "origin_iss": origin_about["iss"]}
        )
        victim = await victim_of(node, hostile)
        lie_body = lying.model_dump_json().encode()
        await hostile.answer(f"/api/ods/packages/{uuid}", "signed", lie_body)
        await hostile.serve_run(uuid, SHELL_SCRIPT)
        watch = await idle_memory(node)
        with watch:
            await hostile.notify(victim.trust["iss"], uuid)
            [refused] = await refused_once(victim, uuid)
        report("another origin's uuid with other bytes", watch)
        assert refused["data"]["reason"] == "its file_size differs from what its origin signed"
        assert await node.events("trust.key_refused") == []
        assert await node.packages() == []

        await node.register_with(origin)
        await node.wait_served("Tool.pkg", sha256, seconds=60)
        # The same uuid, now signed by the hostile peer as its own upload.
        await hostile.answer(
            f"/api/ods/packages/{uuid}", "signed", other_bytes.model_dump_json().encode()
        )
        await hostile.notify(victim.trust["iss"], uuid)
        await asyncio.sleep(SETTLE_SECONDS)
        assert await victim.manifest_requests(uuid) == 1
        [package] = await node.packages()
        assert (package["uuid"], package["sha256"]) == (real["uuid"], sha256)
        assert package["origin_iss"] == origin_about["iss"]
        assert await node.served_sha256("Tool.pkg") == sha256
        no_traceback(node)


async def test_a_uuid_claimed_first_by_a_hostile_peer_is_refused_and_the_genuine_one_arrives(
    tmp_path: Path,
) -> None:
    """The hostile peer learns the uuid of the origin's Tool.pkg and, before the victim has
    seen it, announces a package of its own under that uuid, signed as its own upload:
    the uuid is bound to the origin, so trust.refused says so and nothing is published.
    Then the victim registers with the origin and gets the genuine package: the squatter
    took nothing from it."""
    with mesh_of(tmp_path, 2, **VICTIM_ENV) as nodes, hostile_peer(tmp_path) as hostile:
        await prepare(nodes)
        node, origin = nodes
        path = tmp_path / "Tool.pkg"
        sha256 = random_file(path, MIB + 11)
        api_uuid = str((await origin.upload(path))["uuid"])
        uuid = stored_uuid(api_uuid)  # as peers spell it
        squat = manifest_of(SHELL_SCRIPT, uuid=uuid, origin=hostile.iss, key=hostile.key)
        victim = await victim_of(node, hostile)
        await hostile.answer(
            f"/api/ods/packages/{uuid}", "signed", squat.model_dump_json().encode()
        )
        await hostile.serve_run(uuid, SHELL_SCRIPT)
        await hostile.notify(victim.trust["iss"], uuid)
        [refused] = await refused_once(victim, uuid)
        assert refused["data"]["reason"] == (
            "the origin's statement does not hold: the statement is not a valid "
            f"PackageStatement: uuid {uuid} is bound to its origin, but the statement does "
            f"not show it is {hostile.iss}'s"
        )
        assert await node.packages() == []

        await node.register_with(origin)
        await node.wait_served("Tool.pkg", sha256, seconds=60)
        [package] = await node.packages()
        assert (package["uuid"], package["origin_iss"]) == (
            api_uuid,
            (await origin.about())["iss"],
        )
        no_traceback(node)


CUT_OFF = ["an endless body", "a gzip bomb", "a drip of a byte a second"]


@pytest.mark.parametrize("case", CUT_OFF)
async def test_a_hostile_peers_huge_or_slow_answer_is_cut_off(tmp_path: Path, case: str) -> None:
    """An endless manifest is cut at the victim's manifest cap, a gzip bomb refused
    unread, a drip of a chunk run dropped at the rate floor after one window: the
    peer's last error says which; the fetch is retried with back-off (no retry loop, no
    traceback); nothing is published; memory stays within 50 MiB of idle."""
    with mesh_of(tmp_path, 1, **VICTIM_ENV) as [node], hostile_peer(tmp_path) as hostile:
        await prepare([node])
        victim = await victim_of(node, hostile)
        data = os.urandom(256 * 1024)
        own = manifest_of(data, origin=hostile.iss, key=hostile.key)
        path = f"/api/ods/packages/{own.uuid}"
        if case == "an endless body":
            await hostile.answer(path, "endless")
            error = f"{hostile.name} sent an answer over {MANIFEST_LIMIT} bytes"
        elif case == "a gzip bomb":
            # 160 MiB of zeros in about 160 KiB: under the manifest cap, compressed.
            await hostile.answer(path, "gzip", inflated=160 * MIB)
            error = f"{hostile.name} answered with 'gzip' content encoding, which ODS refuses"
        else:
            await hostile.answer(path, "signed", own.model_dump_json().encode())
            await hostile.serve_run(own.uuid, data, drip=True)
            error = "below the minimum of 64.0 KB/s (ODS_FETCH_MIN_RATE)"
        watch = await idle_memory(node)
        with watch:
            await hostile.notify(victim.trust["iss"], own.uuid)
            found = await wait_for(
                "the victim never cut the hostile peer off",
                20,
                last_error_with(node, hostile.name, error),
            )
            await asyncio.sleep(SETTLE_SECONDS)
        report(case, watch)
        print(f"{case}: {found}")
        assert await victim.fetches("retry") >= 1
        assert await victim.fetches("failed") == 0
        # Back-off: about 1 s, then 2 s, between tries; a loop would ask far more often.
        assert 1 <= await victim.manifest_requests(own.uuid) <= 3
        assert await node.events("trust.refused") == []
        statuses = [package["status"] for package in await node.packages()]
        assert statuses == (["Downloading"] if "drip" in case else [])
        assert await node.served_sha256("Tool.pkg") is None
        _, sent = await hostile.seen()
        if case == "an endless body":
            assert sent[path] > MANIFEST_LIMIT
        no_traceback(node)
