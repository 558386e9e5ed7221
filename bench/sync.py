"""Replication between real `ods serve` nodes on loopback: speed, memory, fan-out, resume.

Four parts, each with its own nodes in fresh data dirs, all registered with
each other through the admin API as an admin would:

1. Transfer: a package of --size (and one of --rss-size) uploaded to node A,
   timed from the upload's 201 to node B answering `Public`, beside two
   references fetching the same file from A's /share in the same run: raw
   `curl -s -o FILE`, and the verified copy an admin would make,
   `curl -s URL | tee FILE | sha256sum` (--digest-command picks another digest
   command: Debian's sha256sum does not use the CPU's SHA instructions, `openssl
   dgst -sha256` does). Repeated --transfer-runs times: the targets are judged
   on the medians.
2. Memory: B's peak RSS during each of those transfers, to show it is flat.
3. Fan-out: a --small package reaching every node of a --nodes chain, then of
   a full mesh of the same nodes.
4. Resume: B killed (SIGKILL) a quarter into a --size transfer and restarted
   on the same port and data dir; the bytes A served to peers beyond the size.
   Repeated --resume-runs times: where the kill lands decides what is in
   flight, so one run says little.

    python bench/sync.py [--size 1G] [--nodes 10] [--small 10M] [--transfer-runs 5]
                         [--resume-runs 5] [--digest-command CMD] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from common import (
    MIB,
    SAMPLE_INTERVAL_SECONDS,
    OdsServer,
    PeakSampler,
    busiest_thread_probe,
    file_sha256,
    filesystem_of,
    logged_in_client,
    machine_summary,
    markdown_table,
    metric_value,
    process_cpu_seconds,
    process_rss_probe,
    progress,
    restart_server,
    running_servers,
    served_sha256,
)
from upload import UPLOAD_TIMEOUT, Size, make_input
from upload import upload as upload_file

from ods.core.config import parse_size

TARGET_RATIO = 0.7  # sync speed over raw curl's
TARGET_VERIFIED_RATIO = 1.0  # sync speed over the verified curl's
TARGET_CPU_RATIO = 1.2  # CPU s of A + B during the sync over A + the verified curl's pipeline
TARGET_CHAIN_SECONDS = 3.0
TARGET_EXTRA_MIB = 4

STAGE = "Prod"
KILL_FRACTION = 0.25
POLL_SECONDS = 0.01  # between looks at the share dirs (a stat each)
METRICS_POLL_SECONDS = 0.02  # between reads of the source's /metrics in part 4
API_FALLBACK_SECONDS = 0.5  # ask a node's API this often even if its share dir shows nothing
MIN_RATE_MIB_S = 2.0  # slower than this and a wait for Public gives up
PEERS = {"to": "peers"}
PEER_BYTES = "ods_bytes_served_total"
PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


@dataclass
class Node:
    """A running server, logged in, with its name and url set."""

    name: str
    server: OdsServer
    client: httpx.Client

    @property
    def share_dir(self) -> Path:
        return self.server.data_dir / "share"


@dataclass
class Mesh:
    """Nodes of one part; `servers` is the list `running_servers` stops at the end."""

    nodes: list[Node]
    servers: list[OdsServer]
    stack: ExitStack

    def restart(self, index: int) -> None:
        """Start the node again where it was (it must be stopped or killed), and log in."""
        node = self.nodes[index]
        node.server = restart_server(node.server)
        self.servers[index] = node.server
        node.server.wait_ready()
        node.client = self.stack.enter_context(logged_in_client(node.server, UPLOAD_TIMEOUT))


@dataclass(frozen=True)
class VerifiedCopy:
    """The commands of the references: curl, and the verified copy's tee and digest
    command (`sha256sum`, or another with --digest-command)."""

    curl: str
    tee: str
    digest: list[str]

    @property
    def pipeline(self) -> str:
        return f"curl -s URL | tee FILE | {shlex.join(self.digest)}"


@dataclass(frozen=True)
class Transfer:
    size: Size
    sync_seconds: float
    curl_seconds: float
    verified_seconds: float
    sync_cpu_seconds: float
    curl_cpu_seconds: float
    verified_cpu_seconds: float
    busiest_thread_seconds: float  # B's busiest thread during the sync
    idle_rss: int
    peak_rss: int

    @property
    def ratio(self) -> float:
        return self.curl_seconds / self.sync_seconds

    @property
    def verified_ratio(self) -> float:
        return self.verified_seconds / self.sync_seconds

    @property
    def cpu_ratio(self) -> float:
        return self.sync_cpu_seconds / self.verified_cpu_seconds


@dataclass(frozen=True)
class Spread:
    topology: str
    nodes: int
    links: int
    seconds: list[float]  # per receiving node, from the 201 on the first node


@dataclass(frozen=True)
class Resume:
    size: Size
    served_at_kill: float
    served_total: float
    restart_seconds: float

    @property
    def extra(self) -> float:
        return self.served_total - self.size.nbytes


@dataclass(frozen=True)
class Inputs:
    transfers: list[tuple[Size, Path]]
    chain: Path
    mesh: Path


def expect(response: httpx.Response, status: int, what: str) -> Any:
    if response.status_code != status:
        raise RuntimeError(f"{what} answered {response.status_code}: {response.text[:500]}")
    return response.json()


def configure(node: Node) -> None:
    """Name, url (the address the other nodes use) and stage, as before any registration."""
    body = {"name": node.name, "url": node.server.base_url, "stage": STAGE}
    expect(node.client.post("/api/admin/about/update", json=body), 201, f"{node.name} about")


def register(node: Node, other: Node) -> None:
    """`node` registers with `other`, with the iss and key from other's About."""
    about = expect(other.client.get("/api/admin/about"), 200, f"{other.name} about")
    body = {"url": other.server.base_url, "iss_id": about["iss"], "key": about["key"]}
    expect(node.client.post("/api/admin/register", json=body), 201, f"{node.name} register")


@contextmanager
def mesh_of(root: Path, names: Sequence[str]) -> Iterator[Mesh]:
    """Servers started at once in root/NAME, logged in and configured; all removed after."""
    try:
        with running_servers(root, names) as servers, ExitStack() as stack:
            nodes = [
                Node(name, server, stack.enter_context(logged_in_client(server, UPLOAD_TIMEOUT)))
                for name, server in zip(names, servers, strict=True)
            ]
            with ThreadPoolExecutor(len(nodes)) as pool:
                list(pool.map(configure, nodes))
            yield Mesh(nodes, servers, stack)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def public_timeout(nbytes: int) -> float:
    return 120.0 + nbytes / MIB / MIN_RATE_MIB_S


def package_state(node: Node, filename: str) -> dict[str, Any] | None:
    """The package object from the list (no chunk digests, so asking stays cheap)."""
    response = node.client.get("/api/admin/packages", params={"search": filename})
    listed = expect(response, 200, f"{node.name} packages")
    found = [item for item in listed["items"] if item["filename"] == filename]
    return found[0] if found else None


def wait_public(
    nodes: Sequence[Node], filename: str, sha256: str, started: float, timeout: float
) -> list[float]:
    """Seconds from `started` until each node's API says the package is Public.

    A node is asked (GET /api/admin/packages?search=) as soon as the file
    shows in its share dir, where publishing renames it just before marking
    it Public, and every API_FALLBACK_SECONDS anyway. Watching the share dirs
    (a stat) rather than asking every node every few ms keeps the polling's
    own load off the nodes being timed.
    """
    seconds: dict[int, float] = {}
    asked = [float("-inf")] * len(nodes)
    while len(seconds) < len(nodes):
        now = time.perf_counter()
        if now - started > timeout:
            states = {
                node.name: package_state(node, filename)
                for index, node in enumerate(nodes)
                if index not in seconds
            }
            raise TimeoutError(f"{filename} not Public after {timeout:.0f} s: {states}")
        for index, node in enumerate(nodes):
            if index in seconds:
                continue
            if node.server.process.poll() is not None:
                raise RuntimeError(f"{node.name} exited with {node.server.process.returncode}")
            if (
                not (node.share_dir / filename).exists()
                and now - asked[index] < API_FALLBACK_SECONDS
            ):
                continue
            asked[index] = now
            state = package_state(node, filename)
            if state is None:
                continue
            if state["status"] == "Failed":
                raise RuntimeError(f"{filename} Failed on {node.name}: {state['status_reason']}")
            if state["status"] == "Public":
                seconds[index] = time.perf_counter() - started
                if state["sha256"] != sha256:
                    raise RuntimeError(f"{node.name} published {filename} with another SHA-256")
        time.sleep(POLL_SECONDS)
    return [seconds[index] for index in range(len(nodes))]


def check_served(node: Node, filename: str, sha256: str) -> None:
    if served_sha256(node.server.base_url, filename) != sha256:
        raise RuntimeError(f"{node.name} serves {filename} with another SHA-256 than the source")


def upload_to(node: Node, path: Path, sha256: str) -> float:
    """Upload the file; returns the perf_counter time of the 201."""
    answer = upload_file(node.client, path, path.name)
    answered = time.perf_counter()
    if answer.sha256 != sha256:
        raise RuntimeError(f"{node.name} computed another SHA-256 for {path.name}")
    return answered


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def curl_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key.lower() not in PROXY_VARIABLES}


def run_curl(curl: str, url: str, output: Path, server_pid: int) -> tuple[float, float]:
    """`curl -s -o FILE URL`: wall seconds, and CPU seconds of curl plus the server."""
    children_before = children_cpu_seconds()
    server_before = process_cpu_seconds(server_pid)
    started = time.perf_counter()
    subprocess.run([curl, "-s", "-o", str(output), url], check=True, env=curl_env())
    seconds = time.perf_counter() - started
    server_cpu = process_cpu_seconds(server_pid) - server_before
    return seconds, children_cpu_seconds() - children_before + server_cpu


def run_verified_curl(
    tools: VerifiedCopy, url: str, output: Path, sha256: str, server_pid: int
) -> tuple[float, float]:
    """`curl -s URL | tee FILE | <digest>`, checked against `sha256`: wall seconds, and
    CPU seconds of the three commands plus the server."""
    children_before = children_cpu_seconds()
    server_before = process_cpu_seconds(server_pid)
    started = time.perf_counter()
    fetch = subprocess.Popen([tools.curl, "-s", url], stdout=subprocess.PIPE, env=curl_env())
    tee = subprocess.Popen([tools.tee, str(output)], stdin=fetch.stdout, stdout=subprocess.PIPE)
    digest = subprocess.Popen(tools.digest, stdin=tee.stdout, stdout=subprocess.PIPE)
    assert fetch.stdout is not None
    assert tee.stdout is not None
    fetch.stdout.close()
    tee.stdout.close()
    said, _ = digest.communicate()
    codes = (fetch.wait(), tee.wait(), digest.returncode)
    seconds = time.perf_counter() - started
    server_cpu = process_cpu_seconds(server_pid) - server_before
    if codes != (0, 0, 0):
        raise RuntimeError(f"{tools.pipeline} exited with {codes}")
    if sha256 not in re.findall(r"\b[0-9a-f]{64}\b", said.decode(errors="replace")):
        raise RuntimeError(f"{tools.digest[0]} said {said!r}, not {sha256}")
    return seconds, children_cpu_seconds() - children_before + server_cpu


def cpu_of(nodes: Sequence[Node]) -> float:
    return sum(process_cpu_seconds(node.server.pid) for node in nodes)


def bench_transfer(size: Size, source: Path, workdir: Path, tools: VerifiedCopy) -> Transfer:
    """Parts 1 and 2: A to B by replication, then A to a file by curl, raw and verified."""
    sha256 = file_sha256(source)
    root = workdir / f"transfer-{size.label}"
    with mesh_of(root, ["a", "b"]) as mesh:
        a, b = mesh.nodes
        register(a, b)
        rss = process_rss_probe(b.server.pid)
        idle_rss = rss()
        progress(f"transfer {size.label}: upload to A, replication to B")
        # B is idle until the upload is in: its threads' CPU from here is the sync's.
        busiest = busiest_thread_probe(b.server.pid)
        with PeakSampler({"rss": rss, "thread": busiest}) as sampler:
            answered = upload_to(a, source, sha256)
            cpu_before = cpu_of(mesh.nodes)
            [sync_seconds] = wait_public(
                [b], source.name, sha256, answered, public_timeout(size.nbytes)
            )
            sync_cpu = cpu_of(mesh.nodes) - cpu_before
        check_served(b, source.name, sha256)
        progress(f"transfer {size.label}: B serves the source's SHA-256; curl from A")
        url = f"{a.server.base_url}/share/{quote(source.name)}"
        output = root / "curl.out"
        curl_seconds, curl_cpu = run_curl(tools.curl, url, output, a.server.pid)
        if output.stat().st_size != size.nbytes:
            raise RuntimeError(f"curl wrote {output.stat().st_size} bytes, not {size.nbytes}")
        output.unlink()
        progress(f"transfer {size.label}: {tools.pipeline} from A")
        verified_seconds, verified_cpu = run_verified_curl(tools, url, output, sha256, a.server.pid)
        if output.stat().st_size != size.nbytes:
            raise RuntimeError(f"tee wrote {output.stat().st_size} bytes, not {size.nbytes}")
    return Transfer(
        size=size,
        sync_seconds=sync_seconds,
        curl_seconds=curl_seconds,
        verified_seconds=verified_seconds,
        sync_cpu_seconds=sync_cpu,
        curl_cpu_seconds=curl_cpu,
        verified_cpu_seconds=verified_cpu,
        busiest_thread_seconds=sampler.peaks["thread"] / 1e6,
        idle_rss=idle_rss,
        peak_rss=sampler.peaks["rss"],
    )


def spread(topology: str, nodes: list[Node], links: int, source: Path) -> Spread:
    sha256 = file_sha256(source)
    progress(f"{topology}: upload {source.name} to {nodes[0].name}")
    answered = upload_to(nodes[0], source, sha256)
    seconds = wait_public(
        nodes[1:], source.name, sha256, answered, public_timeout(source.stat().st_size)
    )
    return Spread(topology, len(nodes), links, seconds)


def register_all(nodes: list[Node], pairs: Sequence[tuple[int, int]]) -> None:
    started = time.perf_counter()
    for left, right in pairs:
        register(nodes[left], nodes[right])
    progress(f"{len(pairs)} registrations in {time.perf_counter() - started:.1f} s")


def bench_fan_out(count: int, inputs: Inputs, workdir: Path) -> list[Spread]:
    """Part 3: a chain (i with i+1), then the same nodes made a full mesh."""
    names = [f"node-{index:02d}" for index in range(count)]
    progress(f"fan-out: starting {count} nodes")
    with mesh_of(workdir / "fan-out", names) as mesh:
        nodes = mesh.nodes
        chain = [(index, index + 1) for index in range(count - 1)]
        register_all(nodes, chain)
        results = [spread("chain", nodes, len(chain), inputs.chain)]
        rest = [(left, right) for left in range(count) for right in range(left + 2, count)]
        register_all(nodes, rest)
        results.append(spread("full mesh", nodes, len(chain) + len(rest), inputs.mesh))
    return results


def bench_resume(size: Size, source: Path, workdir: Path) -> Resume:
    """Part 4: kill -9 the receiver a quarter in, restart it in place, count peer bytes."""
    sha256 = file_sha256(source)
    with mesh_of(workdir / "resume", ["a", "b"]) as mesh:
        a, b = mesh.nodes
        register(a, b)
        progress(f"resume {size.label}: upload to A")
        answered = upload_to(a, source, sha256)
        threshold = size.nbytes * KILL_FRACTION
        while (served := metric_value(a.server.base_url, PEER_BYTES, PEERS)) < threshold:
            if time.perf_counter() - answered > public_timeout(size.nbytes):
                raise TimeoutError(f"A served only {served / MIB:.1f} MiB to B")
            time.sleep(METRICS_POLL_SECONDS)
        b.server.kill()
        served_at_kill = metric_value(a.server.base_url, PEER_BYTES, PEERS)
        progress(f"resume {size.label}: B killed at {served_at_kill / MIB:.1f} MiB served; restart")
        if served_at_kill >= size.nbytes:
            raise RuntimeError("the transfer was complete before the kill; use a larger --size")
        restarted = time.perf_counter()
        mesh.restart(1)
        [restart_seconds] = wait_public(
            [b], source.name, sha256, restarted, public_timeout(size.nbytes)
        )
        served_total = metric_value(a.server.base_url, PEER_BYTES, PEERS)
        check_served(b, source.name, sha256)
    return Resume(size, served_at_kill, served_total, restart_seconds)


def mib_s(nbytes: int, seconds: float) -> float:
    return nbytes / MIB / seconds


def transfer_row(run: str, result: Transfer) -> list[str]:
    nbytes = result.size.nbytes
    return [
        run,
        result.size.label,
        f"{mib_s(nbytes, result.curl_seconds):.0f}",
        f"{mib_s(nbytes, result.verified_seconds):.0f}",
        f"{mib_s(nbytes, result.sync_seconds):.0f}",
        f"{result.ratio:.2f}",
        f"{result.verified_ratio:.2f}",
        f"{result.sync_cpu_seconds / (nbytes / 1024**3):.2f}",
        f"{result.verified_cpu_seconds / (nbytes / 1024**3):.2f}",
        f"{result.cpu_ratio:.2f}",
        f"{mib_s(nbytes, result.busiest_thread_seconds):.0f}",
        f"{result.peak_rss / MIB:.0f}",
        "",
    ]


def transfer_median_row(results: list[Transfer], judged: bool) -> list[str]:
    size = results[0].size
    ratio = statistics.median(r.ratio for r in results)
    verified = statistics.median(r.verified_ratio for r in results)
    cpu = statistics.median(r.cpu_ratio for r in results)
    missed = [
        name
        for name, met in (
            ("raw", ratio >= TARGET_RATIO),
            ("verified", verified >= TARGET_VERIFIED_RATIO),
            ("CPU", cpu <= TARGET_CPU_RATIO),
        )
        if not met
    ]
    gib = size.nbytes / 1024**3

    def speed(seconds: Callable[[Transfer], float]) -> str:
        return f"{statistics.median(mib_s(size.nbytes, seconds(r)) for r in results):.0f}"

    return [
        "median",
        size.label,
        speed(lambda r: r.curl_seconds),
        speed(lambda r: r.verified_seconds),
        speed(lambda r: r.sync_seconds),
        f"{ratio:.2f}",
        f"{verified:.2f}",
        f"{statistics.median(r.sync_cpu_seconds for r in results) / gib:.2f}",
        f"{statistics.median(r.verified_cpu_seconds for r in results) / gib:.2f}",
        f"{cpu:.2f}",
        speed(lambda r: r.busiest_thread_seconds),
        f"{max(r.peak_rss for r in results) / MIB:.0f}",
        (("ok" if not missed else "miss: " + ", ".join(missed)) if judged else "-"),
    ]


def spread_row(result: Spread) -> list[str]:
    slowest = max(result.seconds)
    if result.topology == "chain":
        target = "ok" if slowest < TARGET_CHAIN_SECONDS else "miss"
    else:
        target = "-"
    return [
        result.topology,
        str(result.nodes),
        str(result.links),
        f"{min(result.seconds):.2f}",
        f"{statistics.median(result.seconds):.2f}",
        f"{slowest:.2f}",
        target,
    ]


def resume_row(run: int, result: Resume) -> list[str]:
    return [
        str(run),
        result.size.label,
        f"{result.served_at_kill / MIB:.1f}",
        f"{result.served_total / MIB:.1f}",
        f"{result.extra / MIB:.2f}",
        f"{result.restart_seconds:.1f}",
        "ok" if result.extra <= TARGET_EXTRA_MIB * MIB else "miss",
    ]


def report(
    transfers: list[list[Transfer]],
    spreads: list[Spread],
    resumes: list[Resume],
    small: Size,
    workdir: Path,
    tools: VerifiedCopy,
) -> str:
    transfer_table = markdown_table(
        [
            "run",
            "size",
            "curl MiB/s",
            "verified curl MiB/s",
            "sync MiB/s",
            "sync/curl",
            "sync/verified",
            "sync CPU s/GiB",
            "verified CPU s/GiB",
            "CPU sync/verified",
            "B busiest thread alone MiB/s",
            "B peak RSS MiB",
            "target",
        ],
        [
            row
            for runs in transfers
            for row in [
                *(transfer_row(str(run), result) for run, result in enumerate(runs, 1)),
                transfer_median_row(runs, judged=runs is transfers[-1]),
            ]
        ],
    )
    peaks = [max(result.peak_rss for result in runs) / MIB for runs in transfers]
    idle = max(result.idle_rss for runs in transfers for result in runs) / MIB
    spread_table = markdown_table(
        [
            f"{small.label} package",
            "nodes",
            "registrations",
            "first node s",
            "median node s",
            "all nodes s",
            "target",
        ],
        [spread_row(result) for result in spreads],
    )
    resume_table = markdown_table(
        [
            "run",
            "size",
            "peer MiB served at kill",
            "peer MiB served in all",
            "extra MiB",
            "restart to Public s",
            "target",
        ],
        [resume_row(run, result) for run, result in enumerate(resumes, 1)],
    )
    extras = sorted(result.extra / MIB for result in resumes)
    return "\n\n".join(
        [
            "Transfer A -> B (parts 1 and 2)",
            transfer_table,
            f"sync: the upload's 201 on A to B answering Public (file fetched in 1 MiB "
            f"chunks, each checked by SHA-256, whole file checked, published); curl: "
            f"`curl -s -o FILE` of A's /share; verified curl: `{tools.pipeline}`, its "
            f"digest checked. Ratios are speeds (sync's over the reference's). "
            f"Each run with new nodes. Targets, for the {transfers[-1][0].size.label} "
            f"package, on the medians: sync/curl >= {TARGET_RATIO}, sync/verified >= "
            f"{TARGET_VERIFIED_RATIO}, CPU sync/verified <= {TARGET_CPU_RATIO}. CPU s: A + B "
            f"during the sync; A + the three commands during the verified curl. "
            f"B's busiest thread "
            f"alone: the size over the CPU time of B's busiest thread during the sync (psutil, "
            f"sampled every {SAMPLE_INTERVAL_SECONDS * 1000:.0f} ms), the speed B's stages "
            f"would allow with a CPU each. B's RSS (psutil, children included) sampled as "
            f"often from before the upload to Public: idle at most {idle:.0f} MiB, peaks "
            f"{' and '.join(f'{peak:.0f}' for peak in peaks)} MiB "
            f"(difference {max(peaks) - min(peaks):.0f} MiB). "
            f"B serves every file with the source's SHA-256.",
            "Fan-out (part 3)",
            spread_table,
            f"Seconds from the upload's 201 on the first node to each other node answering "
            f"Public; chain: node i registered with node i+1, uploaded at one end; full mesh: "
            f"the same nodes with every pair registered, a new package. "
            f"Target: chain < {TARGET_CHAIN_SECONDS:.0f} s.",
            "Resume after kill -9 (part 4)",
            resume_table,
            f'B killed once A\'s {PEER_BYTES}{{to="peers"}} passed '
            f"{KILL_FRACTION:.0%} of the size, restarted on the same port and data dir. "
            f"Extra: A's peer bytes in all minus the file's size. "
            f"Target: extra <= {TARGET_EXTRA_MIB} MiB in every run. "
            f"Over {len(extras)} runs: median {statistics.median(extras):.2f} MiB, "
            f"worst {extras[-1]:.2f} MiB.",
            f"Nodes: `ods serve`, SQLite, in-process queue, default settings, stage {STAGE}. "
            f"Public is read from GET /api/admin/packages?search=FILENAME, asked as soon as the "
            f"file appears in the node's share dir (watched every "
            f"{POLL_SECONDS * 1000:.0f} ms) and every {API_FALLBACK_SECONDS} s regardless. "
            f"Work dir on {filesystem_of(workdir)}. {machine_summary()}",
        ]
    )


def size_arg(text: str) -> Size:
    nbytes = parse_size(text)
    if nbytes < MIB:
        raise argparse.ArgumentTypeError("must be at least 1M")
    return Size(text.strip(), nbytes)


def label_of(nbytes: int) -> str:
    for suffix, unit in (("G", 1024**3), ("M", MIB), ("K", 1024)):
        if nbytes % unit == 0:
            return f"{nbytes // unit}{suffix}"
    return str(nbytes)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--size",
        type=size_arg,
        default="1G",
        help="the large package: transfer and resume (1024-based; default 1G)",
    )
    parser.add_argument(
        "--rss-size",
        type=size_arg,
        help="a smaller transfer, to compare peak RSS (default: a quarter of --size)",
    )
    parser.add_argument(
        "--nodes", type=int, default=10, help="nodes in the chain and the mesh (default 10)"
    )
    parser.add_argument(
        "--small", type=size_arg, default="10M", help="the fan-out package (default 10M)"
    )
    parser.add_argument(
        "--transfer-runs",
        type=int,
        default=5,
        help="transfers (and curls) of each size in part 1; the median ratio counts (default 5)",
    )
    parser.add_argument(
        "--resume-runs",
        type=int,
        default=5,
        help="kills and restarts in part 4; each run is reported (default 5)",
    )
    parser.add_argument(
        "--digest-command",
        default="sha256sum",
        help="the digest command of the verified copy, e.g. 'openssl dgst -sha256' "
        "(default sha256sum)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path.cwd(),
        help="where to make the work dir (default: the current dir); a disk, not tmpfs",
    )
    args = parser.parse_args(argv)
    if args.nodes < 2:
        parser.error("--nodes must be at least 2")
    if args.transfer_runs < 1:
        parser.error("--transfer-runs must be at least 1")
    if args.resume_runs < 1:
        parser.error("--resume-runs must be at least 1")
    if args.rss_size is None:
        quarter = args.size.nbytes // 4 // MIB * MIB
        args.rss_size = Size(label_of(quarter), quarter) if quarter >= MIB else None
    if args.rss_size is not None and args.rss_size.nbytes >= args.size.nbytes:
        parser.error("--rss-size must be smaller than --size")
    return args


def make_inputs(args: argparse.Namespace, directory: Path) -> Inputs:
    directory.mkdir()
    sizes: list[Size] = [size for size in (args.rss_size, args.size) if size is not None]
    transfers = [(size, directory / f"ods-bench-sync-{size.label}.bin") for size in sizes]
    small: Size = args.small
    chain = directory / f"ods-bench-chain-{small.label}.bin"
    mesh = directory / f"ods-bench-mesh-{small.label}.bin"
    for size, path in [*transfers, (small, chain), (small, mesh)]:
        make_input(path, size.nbytes)
    return Inputs(transfers, chain, mesh)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    digest = shlex.split(args.digest_command)
    found = {name: shutil.which(name) for name in ("curl", "tee", digest[0])}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        sys.exit(f"bench/sync.py needs {', '.join(missing)} on the PATH (the references of part 1)")
    tools = VerifiedCopy(
        curl=str(found["curl"]), tee=str(found["tee"]), digest=[str(found[digest[0]]), *digest[1:]]
    )
    args.dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ods-bench-sync-", dir=args.dir))
    filesystem = filesystem_of(workdir)
    progress(f"work dir {workdir} on {filesystem}")
    if "(tmpfs)" in filesystem:
        progress("warning: the work dir is in memory (tmpfs); pass --dir on a real disk")
    try:
        inputs = make_inputs(args, workdir / "inputs")
        transfers = [
            [bench_transfer(size, path, workdir, tools) for _ in range(args.transfer_runs)]
            for size, path in inputs.transfers
        ]
        spreads = bench_fan_out(args.nodes, inputs, workdir)
        large, large_path = inputs.transfers[-1]
        resumes = [bench_resume(large, large_path, workdir) for _ in range(args.resume_runs)]
        print(report(transfers, spreads, resumes, args.small, workdir, tools))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
