"""Before a peer's package is taken: is the manifest sane, and does its origin vouch for it?

A manifest is checked before anything is allocated for it: size within this
server's limit, exactly one chunk entry per MiB, in order, a filename an
upload could have. Then the origin's signed statement must verify, and say
exactly what the manifest says; its stage is the statement's, or that of a
later signed stage change. Whatever fails is `Refused`: this source will
not do, and retrying it will not help.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ods.core.errors import InvalidInput
from ods.core.stages import Stage
from ods.events.log import record
from ods.events.trust_events import StatementRefused
from ods.mesh.protocol.client import PeerLink
from ods.mesh.protocol.wire import PackageManifest
from ods.mesh.state import mesh_state
from ods.packages.digest import CHUNK_SIZE
from ods.packages.naming import check_filename, normal_name
from ods.trust.statements import (
    PackageStatement,
    StageStatement,
    Untrusted,
    chunk_list_digest,
)
from ods.trust.verify import verify

if TYPE_CHECKING:
    from ods.core.context import Context

MANIFEST_HEAD = 16 * 1024  # a manifest's fields and statements
MANIFEST_PER_CHUNK = 160  # one chunk's entry, with room to spare
FUTURE_SLACK = 86400  # clocks a day ahead are tolerated
REFUSAL_QUIET_SECONDS = 3600  # the same refusal is recorded once an hour


class Refused(Exception):
    """This source's package will not be taken; the message says why. `filename` is the
    package's name, when the source named it acceptably."""

    def __init__(self, message: str, *, filename: str | None = None) -> None:
        super().__init__(message)
        self.filename = filename


class Lacking(Refused):
    """The source does not have the package (any more)."""


def chunk_count(size: int) -> int:
    return -(-size // CHUNK_SIZE)


def manifest_limit(max_size: int) -> int:
    """The most bytes a manifest of a package this server accepts can take."""
    return MANIFEST_HEAD + chunk_count(max_size) * MANIFEST_PER_CHUNK


def check_manifest(manifest: PackageManifest, uuid: str, max_size: int) -> PackageManifest:
    """The manifest, its filename in its one spelling (NFC); Refused unless it describes
    `uuid` sanely and within this server's limits."""
    filename: str | None = None
    bad_name = ""
    try:
        filename = check_filename(manifest.filename)
    except InvalidInput as exc:
        bad_name = exc.message

    def refuse(reason: str) -> Refused:
        return Refused(reason, filename=filename)

    if manifest.uuid != uuid:
        raise refuse(f"the peer described another package ({manifest.uuid})")
    if manifest.file_size > max_size:
        raise refuse(
            f"it is {manifest.file_size} bytes, over this server's limit of {max_size} bytes"
        )
    if filename is None:
        raise refuse(f"its filename is not acceptable: {bad_name}")
    if len(manifest.chunks) != chunk_count(manifest.file_size):
        raise refuse(
            f"it lists {len(manifest.chunks)} chunks; {manifest.file_size} bytes "
            f"make {chunk_count(manifest.file_size)}"
        )
    if any(chunk.index != index for index, chunk in enumerate(manifest.chunks)):
        raise refuse("its chunks are not listed once each, in order")
    if manifest.created_ts > time.time() + FUTURE_SLACK:
        raise refuse("its creation time is in the future")
    return manifest.model_copy(update={"filename": filename})


@dataclass(frozen=True)
class Vouched:
    """A manifest its origin vouches for: who that is, the stage, the statements to keep."""

    origin: str
    stage: Stage
    statement: str
    stage_statement: str | None
    # The file's SHA-512 as the origin signed it; None from origins that did not keep it.
    sha512: str | None = None


def matches(statement: PackageStatement, manifest: PackageManifest) -> str | None:
    """What the manifest says that its origin's statement does not, or None."""
    said = {
        "uuid": manifest.uuid,
        "filename": manifest.filename,
        "file_size": manifest.file_size,
        "sha256": manifest.sha256,
        "sha1": manifest.sha1,
        "created_ts": manifest.created_ts,
        "replaces": manifest.replaces,
    }
    for field, value in said.items():
        signed = getattr(statement, field)
        if field == "filename":
            signed = normal_name(signed)
        if signed != value:
            return field
    if manifest.origin_iss is not None and manifest.origin_iss != statement.origin:
        return "origin_iss"
    if chunk_list_digest(c.sha256 for c in manifest.chunks) != statement.chunks_sha256:
        return "chunk SHA-256 list"
    if chunk_list_digest(c.sha1 for c in manifest.chunks) != statement.chunks_sha1:
        return "chunk SHA1 list"
    return None


async def vouch(context: Context, link: PeerLink, manifest: PackageManifest) -> Vouched:
    """The origin's word for the manifest, or Refused saying why it does not hold."""
    try:
        opened = await verify(context, manifest.statement, PackageStatement, via=link.iss)
    except Untrusted as exc:
        raise Refused(f"the origin's statement does not hold: {exc}") from None
    statement = opened.statement
    differs = matches(statement, manifest)
    if differs is not None:
        raise Refused(f"its {differs} differs from what its origin signed")
    stage, stage_statement = statement.stage, None
    if manifest.stage_statement is not None:
        try:
            change = await verify(context, manifest.stage_statement, StageStatement, via=link.iss)
        except Untrusted:
            change = None  # the origin's stage stands
        if change is not None and change.statement.uuid == manifest.uuid:
            stage = change.statement.stage
            stage_statement = change.signed.model_dump_json()
    return Vouched(
        statement.origin,
        stage,
        opened.signed.model_dump_json(),
        stage_statement,
        statement.sha512,
    )


async def record_refusal(
    context: Context,
    link: PeerLink,
    subject: Literal["package", "stage", "delete"],
    uuid: str,
    filename: str | None,
    reason: str,
) -> None:
    """A `trust.refused` event, once an hour for the same refusal from the same peer."""
    seen = mesh_state(context).refusals
    key = (subject, uuid, link.iss, reason)
    now = time.monotonic()
    if now - seen.get(key, -REFUSAL_QUIET_SECONDS) < REFUSAL_QUIET_SECONDS:
        return
    seen[key] = now
    event = StatementRefused(
        subject=subject,
        uuid=uuid,
        filename=filename,
        peer=link.name,
        peer_iss=link.iss,
        reason=reason,
    )
    async with context.db.transaction() as session:
        await record(session, event)
