"""The statements this server signs: of its uploads, its admins' stage changes and deletes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from ods.core.humanize import timestamp
from ods.core.models import Package
from ods.core.stages import Stage
from ods.trust.keys import SigningKey
from ods.trust.statements import (
    DeleteStatement,
    PackageStatement,
    StageStatement,
    chunk_list_digest,
)


class ChunkDigests(Protocol):
    @property
    def index(self) -> int: ...

    @property
    def sha1(self) -> str: ...

    @property
    def sha256(self) -> str: ...


def package_statement(
    key: SigningKey,
    package: Package,
    chunks: Sequence[ChunkDigests],
    *,
    uuid_nonce: str | None = None,
) -> str:
    """This server's statement of a version uploaded here, as stored and sent; `uuid_nonce`
    is what a uuid of `new_bound_uuid` was made from (versions made before have none)."""
    ordered = sorted(chunks, key=lambda chunk: chunk.index)
    return key.sign(
        PackageStatement(
            origin=key.iss,
            uuid=package.uuid,
            filename=package.filename,
            file_size=package.file_size,
            sha256=package.sha256,
            sha1=package.sha1,
            sha512=package.sha512,
            chunks_sha256=chunk_list_digest(chunk.sha256 for chunk in ordered),
            chunks_sha1=chunk_list_digest(chunk.sha1 for chunk in ordered),
            stage=Stage(package.stage),
            created_ts=timestamp(package.created),
            replaces=package.replaces,
            uuid_nonce=uuid_nonce,
        )
    )


def stage_statement(key: SigningKey, uuid: str, stage: Stage) -> str:
    return key.sign(
        StageStatement(
            signer_iss=key.iss, uuid=uuid, stage=stage, changed_ms=time.time_ns() // 1_000_000
        )
    )


def delete_statement(
    key: SigningKey, uuid: str, filename: str, reason: str, replaced_by: str | None = None
) -> str:
    assert reason in ("deleted", "replaced")
    return key.sign(
        DeleteStatement(
            signer_iss=key.iss,
            uuid=uuid,
            filename=filename,
            reason="deleted" if reason == "deleted" else "replaced",
            replaced_by=replaced_by,
            created_ts=int(time.time()),
        )
    )
