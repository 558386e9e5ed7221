"""Chaos on a mesh of real `ods serve` processes: uploads, replacements, deletes,
promotions and demotions on random nodes while nodes are killed with SIGKILL and started
again; then the mesh must converge. The nodes have different stages, so demotions
withdraw packages and promotions bring them back. Shared by the bounded test in the suite
and `bench/chaos.py`."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from tests.helpers.processes.mesh import Node, mesh_of, random_file

STAGES = ("Dev", "Test", "Prod")
# The nodes' own stages, in order; more nodes than names repeat Dev.
NODE_STAGES = ("Dev", "Test", "Prod", "Dev", "Test")
# The first actions, so that even a short run does each kind at least once.
OPENING = ("upload", "upload", "kill", "stage", "upload", "replace", "delete", "stage")
MIB = 1024 * 1024
# Short intervals, so that a node that missed news while it was down catches up soon.
CHAOS_ENV = {"ODS_RECONCILE_INTERVAL": "10"}


@dataclass
class ChaosReport:
    nodes: int
    seconds: float
    operations: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    converged_after: float | None = None  # seconds from the end of the chaos
    packages: int = 0
    received_bytes: int = 0  # sizes of the packages each node holds from others, summed
    bytes_to_peers: float = 0.0  # counted before each kill and at the end
    peak_rss: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def refetched_bytes(self) -> float:
        """Bytes sent between peers beyond one copy of each final package per receiver:
        resumed and repeated downloads, and versions replaced or deleted meanwhile."""
        return max(0.0, self.bytes_to_peers - self.received_bytes)


class RssWatch:
    """The peak resident memory of any one node, sampled while the nodes run."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes
        self.peak = 0

    def sample(self) -> None:
        for node in self.nodes:
            if node.server is None or node.server.process.poll() is not None:
                continue
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, psutil.Process(node.pid).memory_info().rss)


Row = tuple[str, str, str, str | None]


def accepts(server_stage: str, package_stage: str) -> bool:
    return STAGES.index(package_stage) >= STAGES.index(server_stage)


async def state_of(node: Node) -> dict[str, Row] | None:
    """filename -> (sha256, stage, status, origin iss) of every package on the node; None
    if it is down."""
    try:
        async with node.client() as client:
            response = await client.get("/api/admin/packages", params={"limit": 1000})
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    return {
        item["filename"]: (item["sha256"], item["stage"], item["status"], item["origin_iss"])
        for item in response.json()["items"]
    }


async def converged(nodes: list[Node], stages: dict[str, str], isses: dict[str, str]) -> str | None:
    """None when the mesh has settled; else what differs. Settled: every package has one
    version and stage everywhere it is held, and each node serves exactly the packages its
    stage takes (and those uploaded to it); a package it does not take is absent or
    withdrawn."""
    states = {node.name: await state_of(node) for node in nodes}
    if any(state is None for state in states.values()):
        return "a node does not answer"
    versions: dict[str, set[tuple[str, str]]] = {}
    for state in states.values():
        for name, (sha256, stage, _, _) in (state or {}).items():
            versions.setdefault(name, set()).add((sha256, stage))
    for name, seen in versions.items():
        if len(seen) > 1:
            return f"{name} differs between nodes: {sorted(seen)}"
    for node in nodes:
        state = states[node.name] or {}
        for name, ((_, stage),) in versions.items():
            row = state.get(name)
            mine = row is not None and row[3] in (None, isses[node.name])
            wanted = "Public" if mine or accepts(stages[node.name], stage) else "Withdrawn"
            if row is None and wanted == "Public":
                return f"{node.name} ({stages[node.name]}) lacks {name} at {stage}"
            if row is not None and row[2] != wanted:
                return f"{node.name} ({stages[node.name]}) has {name} {row[2]}, not {wanted}"
    return None


class Chaos:
    def __init__(self, root: Path, nodes: list[Node], stages: dict[str, str], seed: int) -> None:
        self.root = root
        self.nodes = nodes
        self.stages = stages
        self.rng = random.Random(seed)
        self.opening = list(OPENING)
        self.down: dict[str, float] = {}  # node name -> when to start it again
        self.files = 0

    def live(self) -> list[Node]:
        return [node for node in self.nodes if node.name not in self.down]

    async def act(self, report: ChaosReport) -> None:
        choice = (
            self.opening.pop(0)
            if self.opening
            else self.rng.choices(
                ["upload", "replace", "delete", "stage", "kill"], weights=[4, 2, 1, 2, 1]
            )[0]
        )
        live = self.live()
        if choice == "kill":
            if len(self.down) < 2 and len(live) > 2:
                victim = self.rng.choice(live)
                # Its counters die with it: count what it sent so far first.
                report.bytes_to_peers += await victim.metric(
                    "ods_bytes_served_total", {"to": "peers"}
                )
                victim.kill()
                self.down[victim.name] = time.monotonic() + self.rng.uniform(2, 6)
                report.kills += 1
            return
        node = self.rng.choice(live)
        state = await state_of(node) or {}
        names = sorted(state)
        try:
            if choice in ("upload", "replace") or not names:
                if choice == "replace" and names:
                    name = self.rng.choice(names)
                else:
                    self.files += 1
                    name = f"Chaos-{self.files}.pkg"
                path = self.root / "files" / f"{self.files}-{self.rng.random():.6f}" / name
                path.parent.mkdir(parents=True)
                await asyncio.to_thread(random_file, path, self.rng.randint(MIB // 2, 3 * MIB))
                stage = self.rng.choice([s for s in STAGES if accepts(self.stages[node.name], s)])
                await self.upload(node, path, stage=stage, replace=name in state)
            elif choice == "delete":
                async with node.client() as client:
                    await client.delete(f"/api/admin/packages/{self.rng.choice(names)}")
            else:
                async with node.client() as client:
                    await client.patch(
                        f"/api/admin/packages/{self.rng.choice(names)}",
                        json={"stage": self.rng.choice(STAGES)},
                    )
            report.operations[choice] += 1
        except httpx.TransportError:
            report.operations[f"{choice} (node went away)"] += 1

    @staticmethod
    async def upload(node: Node, path: Path, *, stage: str, replace: bool) -> None:
        form = {"stage": stage} | ({"replace": "true"} if replace else {})
        async with node.client() as client:
            with path.open("rb") as handle:
                await client.post(
                    "/api/admin/upload", files={"file": (path.name, handle)}, data=form
                )

    def restart_due(self) -> None:
        now = time.monotonic()
        for node in self.nodes:
            if node.name in self.down and self.down[node.name] <= now:
                node.start()
                del self.down[node.name]

    async def relogin(self) -> None:
        for node in self.nodes:
            await node.login()


async def run_chaos(
    root: Path, *, nodes: int = 5, seconds: float = 30.0, settle: float = 180.0, seed: int = 1
) -> ChaosReport:
    """Run the chaos for `seconds`, then wait up to `settle` seconds for convergence."""
    report = ChaosReport(nodes=nodes, seconds=seconds)
    with mesh_of(root, nodes, **CHAOS_ENV) as mesh:
        stages = {node.name: NODE_STAGES[i % len(NODE_STAGES)] for i, node in enumerate(mesh)}
        isses: dict[str, str] = {}
        for node in mesh:
            await node.login()
            await node.configure(stages[node.name])
            isses[node.name] = (await node.about())["iss"]
        for i, node in enumerate(mesh):
            for other in mesh[i + 1 :]:
                await node.register_with(other)  # every node with every other
        chaos = Chaos(root, mesh, stages, seed)
        watch = RssWatch(mesh)
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            await chaos.act(report)
            chaos.restart_due()
            watch.sample()
            await asyncio.sleep(chaos.rng.uniform(0.2, 1.0))
        while chaos.down:
            chaos.restart_due()
            await asyncio.sleep(0.2)
        settled_from = time.monotonic()
        await chaos.relogin()
        difference: str | None = "not checked yet"
        while time.monotonic() - settled_from < settle:
            watch.sample()
            difference = await converged(mesh, stages, isses)
            if difference is None:
                report.converged_after = time.monotonic() - settled_from
                break
            await asyncio.sleep(1.0)
        if difference is not None:
            report.problems.append(f"no convergence after {settle:.0f} s: {difference}")
            report.problems.extend(await history(mesh, difference))
        report.peak_rss = watch.peak
        await check_served(mesh, isses, report)
    return report


async def history(nodes: list[Node], difference: str) -> list[str]:
    """What each node's event log says about the packages named in `difference`."""
    names = {word for word in difference.split() if word.startswith("Chaos-")}
    lines = []
    for node in nodes:
        async with node.client() as client:
            response = await client.get("/api/admin/events", params={"limit": 1000})
        for event in reversed(response.json()["items"]):
            if event["data"].get("filename") in names:
                lines.append(f"{node.name} #{event['id']} {event['kind']}: {event['message']}")
    return lines


async def check_served(nodes: list[Node], isses: dict[str, str], report: ChaosReport) -> None:
    """Every node serves exactly the bytes its listing names for what it serves, and keeps
    no staging."""
    everything: dict[str, int] = {}
    for node in nodes:
        listed = await node.packages()
        for package in listed:
            everything[package["filename"]] = int(package["file_size"])
            if package["origin_iss"] not in (None, isses[node.name]):
                report.received_bytes += int(package["file_size"])
            if package["status"] != "Public":
                continue
            if await node.served_sha256(package["filename"]) != package["sha256"]:
                report.problems.append(
                    f"{node.name} does not serve {package['filename']} as listed"
                )
        report.bytes_to_peers += await node.metric("ods_bytes_served_total", {"to": "peers"})
        staging = node.data_dir / "staging"
        left = [p.name for p in staging.iterdir()] if staging.exists() else []
        if left:
            report.problems.append(f"{node.name} keeps staging files {left}")
    report.packages = len(everything)
