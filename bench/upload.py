"""Upload throughput, peak memory and peak disk use of a real `ods serve`.

For each size: a random input file; a reference loop doing the work the
server cannot avoid (read, file SHA1 + SHA-256 + SHA-512 and per-MiB SHA1 + SHA-256, write, fsync);
then the same file streamed as multipart to a fresh server, timed from the
first body byte to the 201 answer while a thread samples the server's RSS and
the disk used under its DATA_DIR. Prints a Markdown table.

    python bench/upload.py --sizes 100M,1G,4G [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
from common import (
    MIB,
    SAMPLE_INTERVAL_SECONDS,
    OdsServer,
    PeakSampler,
    disk_usage,
    filesystem_of,
    logged_in_client,
    machine_summary,
    markdown_table,
    process_cpu_seconds,
    process_rss_probe,
    progress,
    running_server,
)

from ods.core.config import parse_size

CHUNK_SIZE = MIB  # the server hashes 1 MiB (1,048,576-byte) chunks
CLIENT_BLOCK = MIB
UPLOAD_TIMEOUT = httpx.Timeout(900.0, connect=10.0)

TARGET_RATIO = 0.7
TARGET_RSS_MIB = 150
TARGET_DISK_SLACK_MIB = 2


@dataclass(frozen=True)
class Size:
    label: str
    nbytes: int


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu_seconds: float
    sha1: str
    sha256: str
    sha512: str


@dataclass(frozen=True)
class UploadAnswer:
    seconds: float
    sha1: str
    sha256: str
    sha512: str
    package_id: int


@dataclass(frozen=True)
class ServerRun:
    run: Run
    idle_rss: int
    peak_rss: int
    peak_extra_disk: int


@dataclass(frozen=True)
class Result:
    size: Size
    reference: Run
    server: ServerRun


def parse_sizes(text: str) -> list[Size]:
    labels = [part.strip() for part in text.split(",") if part.strip()]
    sizes = [Size(label, parse_size(label)) for label in labels]
    if not sizes or any(size.nbytes <= 0 for size in sizes):
        raise ValueError("sizes must be positive")
    return sizes


def make_input(path: Path, size: int) -> None:
    """Random bytes, written once and flushed to disk; reused if already there."""
    if path.is_file() and path.stat().st_size == size:
        progress(f"reusing {path.name}")
        return
    progress(f"writing {size / MIB:.0f} MiB of random bytes to {path.name}")
    with path.open("wb", buffering=0) as handle:
        remaining = size
        while remaining:
            block = os.urandom(min(CLIENT_BLOCK, remaining))
            handle.write(block)
            remaining -= len(block)
        os.fsync(handle.fileno())


def run_reference(source: Path, target: Path) -> Run:
    """Read in 1 MiB blocks, hash file (SHA1, SHA-256, SHA-512) and blocks (SHA1,
    SHA-256), write, fsync."""
    file_sha1 = hashlib.sha1(usedforsecurity=False)
    file_sha256 = hashlib.sha256()
    file_sha512 = hashlib.sha512()
    block_digests: list[tuple[str, str]] = []
    cpu_started = time.process_time()
    started = time.perf_counter()
    with source.open("rb", buffering=0) as reader, target.open("wb", buffering=0) as writer:
        while block := reader.read(CHUNK_SIZE):
            file_sha1.update(block)
            file_sha256.update(block)
            file_sha512.update(block)
            block_digests.append(
                (
                    hashlib.sha1(block, usedforsecurity=False).hexdigest(),
                    hashlib.sha256(block).hexdigest(),
                )
            )
            writer.write(block)
        os.fsync(writer.fileno())
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    target.unlink()
    return Run(
        seconds,
        cpu_seconds,
        file_sha1.hexdigest(),
        file_sha256.hexdigest(),
        file_sha512.hexdigest(),
    )


class MultipartFileBody:
    """A multipart/form-data body (`stage=Prod`, then `file`) streamed from disk.

    Iterating it reads the file in blocks; nothing is held whole in memory.
    `started` is set when the first body byte is handed to the connection.
    """

    def __init__(self, path: Path, filename: str) -> None:
        self.path = path
        self.boundary = f"ods-bench-{secrets.token_hex(12)}"
        self.head = (
            f"--{self.boundary}\r\n"
            'Content-Disposition: form-data; name="stage"\r\n\r\n'
            "Prod\r\n"
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.started: float | None = None

    @property
    def headers(self) -> dict[str, str]:
        length = len(self.head) + self.path.stat().st_size + len(self.tail)
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(length),
        }

    def __iter__(self) -> Iterator[bytes]:
        self.started = time.perf_counter()
        yield self.head
        with self.path.open("rb", buffering=0) as reader:
            while block := reader.read(CLIENT_BLOCK):
                yield block
        yield self.tail


def upload(client: httpx.Client, path: Path, filename: str) -> UploadAnswer:
    """POST the file to /api/admin/upload, timed from the first body byte to the answer."""
    body = MultipartFileBody(path, filename)
    response = client.post("/api/admin/upload", content=body, headers=body.headers)
    finished = time.perf_counter()
    if response.status_code != 201:
        raise RuntimeError(f"upload answered {response.status_code}: {response.text[:500]}")
    assert body.started is not None
    answer = response.json()
    return UploadAnswer(
        finished - body.started,
        answer["sha1"],
        answer["sha256"],
        answer["sha512"],
        int(answer["id"]),
    )


def delete_package(client: httpx.Client, package_id: int) -> None:
    response = client.delete(f"/api/admin/packages/{package_id}")
    if response.status_code != 204:
        raise RuntimeError(f"delete answered {response.status_code}: {response.text[:500]}")


def upload_measured(server: OdsServer, client: httpx.Client, path: Path) -> ServerRun:
    """Upload while sampling the server's RSS and the disk used under DATA_DIR."""
    rss = process_rss_probe(server.pid)
    idle_rss = rss()
    disk_before = disk_usage(server.data_dir)
    cpu_before = process_cpu_seconds(server.pid)
    probes = {"rss": rss, "disk": lambda: disk_usage(server.data_dir)}
    with PeakSampler(probes) as sampler:
        answer = upload(client, path, path.name)
    cpu_seconds = process_cpu_seconds(server.pid) - cpu_before
    delete_package(client, answer.package_id)
    return ServerRun(
        run=Run(answer.seconds, cpu_seconds, answer.sha1, answer.sha256, answer.sha512),
        idle_rss=idle_rss,
        peak_rss=sampler.peaks["rss"],
        peak_extra_disk=sampler.peaks["disk"] - disk_before,
    )


def bench_size(size: Size, workdir: Path, inputs: Path) -> Result:
    source = inputs / f"ods-bench-{size.label}.bin"
    make_input(source, size.nbytes)
    progress(f"{size.label}: reference")
    reference = run_reference(source, workdir / "reference.out")
    progress(f"{size.label}: server")
    data_dir = workdir / f"data-{size.label}"
    try:
        with (
            running_server(data_dir, workdir / f"server-{size.label}.log") as server,
            logged_in_client(server, UPLOAD_TIMEOUT) as client,
        ):
            measured = upload_measured(server, client, source)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    if (measured.run.sha1, measured.run.sha256, measured.run.sha512) != (
        reference.sha1,
        reference.sha256,
        reference.sha512,
    ):
        raise RuntimeError(f"{size.label}: the server's digests differ from the reference's")
    progress(f"{size.label}: digests match; idle RSS {measured.idle_rss / MIB:.0f} MiB")
    return Result(size, reference, measured)


def target_misses(result: Result) -> list[str]:
    server = result.server
    misses = []
    if speed(result.size, server.run) / speed(result.size, result.reference) < TARGET_RATIO:
        misses.append("ratio")
    if server.peak_rss >= TARGET_RSS_MIB * MIB:
        misses.append("RSS")
    if server.peak_extra_disk > result.size.nbytes + TARGET_DISK_SLACK_MIB * MIB:
        misses.append("disk")
    return misses


def speed(size: Size, run: Run) -> float:
    return size.nbytes / MIB / run.seconds


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}" if denominator > 0 else "n/a"


def table_row(result: Result) -> list[str]:
    reference_speed = speed(result.size, result.reference)
    server_speed = speed(result.size, result.server.run)
    misses = target_misses(result)
    return [
        result.size.label,
        f"{reference_speed:.0f}",
        f"{server_speed:.0f}",
        f"{server_speed / reference_speed:.2f}",
        ratio(result.server.run.cpu_seconds, result.reference.cpu_seconds),
        f"{result.server.peak_rss / MIB:.0f}",
        f"{result.server.peak_extra_disk / MIB:.1f}",
        f"{result.server.peak_extra_disk / result.size.nbytes:.3f}",
        "miss: " + ", ".join(misses) if misses else "ok",
    ]


def report(results: list[Result], workdir: Path) -> str:
    header = [
        "size",
        "reference MiB/s",
        "server MiB/s",
        "ratio (server/ref)",
        "CPU s server/ref",
        "server peak RSS MiB",
        "peak extra disk MiB",
        "extra disk / size",
        "targets",
    ]
    table = markdown_table(header, [table_row(result) for result in results])
    peaks = [result.server.peak_rss for result in results]
    notes = [
        f"Targets: ratio >= {TARGET_RATIO}, peak RSS < {TARGET_RSS_MIB} MiB and flat "
        f"across sizes (here {min(peaks) / MIB:.0f}-{max(peaks) / MIB:.0f} MiB), "
        f"peak extra disk <= size + {TARGET_DISK_SLACK_MIB} MiB.",
        f"Sampled every {SAMPLE_INTERVAL_SECONDS * 1000:.0f} ms: RSS of the server process "
        "(psutil, with any children); disk as the du-like sum of st_blocks * 512 over "
        "DATA_DIR (share, staging, database), each inode once, minus its value before "
        "the upload.",
        "Server time: first multipart body byte sent to the 201 answer; MiB/s counts "
        "the file's bytes only.",
        "CPU s server/ref: CPU time (user + system) of the server process during the "
        "upload over that of the reference loop; less sensitive to other load than MiB/s.",
        f"Work dir on {filesystem_of(workdir)}. {machine_summary()}",
    ]
    return table + "\n\n" + "\n".join(notes)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default="100M,1G,4G",
        help="comma-separated sizes, 1024-based (default 100M,1G,4G)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        help="work dir for inputs, the reference copy and DATA_DIR (default: a new temp dir); "
        "use a disk-backed filesystem, not tmpfs",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the generated inputs for the next run"
    )
    return parser.parse_args(argv)


def run_all(sizes: list[Size], workdir: Path) -> list[Result]:
    inputs = workdir / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    filesystem = filesystem_of(workdir)
    progress(f"work dir {workdir} on {filesystem}")
    if "(tmpfs)" in filesystem:
        progress("warning: the work dir is in memory (tmpfs); pass --dir on a real disk")
    return [bench_size(size, workdir, inputs) for size in sizes]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes: list[Size] = args.sizes
    created = args.dir is None
    workdir: Path = Path(tempfile.mkdtemp(prefix="ods-bench-")) if created else args.dir
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        results = run_all(sizes, workdir)
        print(report(results, workdir))
    finally:
        clean_up(workdir, created=created, keep=args.keep)
    return 0


def clean_up(workdir: Path, *, created: bool, keep: bool) -> None:
    """Remove only what this script makes; with keep, leave the inputs in place."""
    inputs = workdir / "inputs"
    (workdir / "reference.out").unlink(missing_ok=True)
    for path in [*workdir.glob("data-*"), *workdir.glob("server-*.log")]:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if keep:
        progress(f"inputs kept in {inputs}")
        return
    for path in inputs.glob("ods-bench-*.bin"):
        path.unlink()
    with suppress(OSError):
        inputs.rmdir()
        if created:
            workdir.rmdir()


if __name__ == "__main__":
    sys.exit(main())
