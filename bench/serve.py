"""Downloads from /share with wrk: Nginx serving the share dir itself, the shipped Nginx
config in front of ODS, and ODS alone, side by side from one run.

Three setups on one data dir, all on loopback:

- nginx: Nginx-direct, a minimal config serving DATA_DIR/share at /share/
  (sendfile, tcp_nopush), over http and over https with the shipped config's
  TLS settings and the same certificate: the ceiling;
- shipped: deploy/nginx/ods.conf (adapted as the end-to-end tests adapt it)
  in front of `ods serve` with ODS_ACCEL_REDIRECT=/_ods_share/, over https;
- ods: `ods serve` alone (uvicorn, SQLite), over http.

One Public package per --sizes entry, uploaded through the admin API, is
fetched whole and, for files of 2 MiB and more, in 1 MiB Range slices at
varying offsets, with `wrk -t<threads> -c<N> -d<duration>s --latency` for each
--connections entry. Each ODS run follows the Nginx-direct run of the same
scheme and case, so their ratio compares figures taken a moment apart. Prints
a Markdown table with the issue's targets, ODS's RSS, the commands and the
machine; progress on stderr.

    python bench/serve.py [--sizes 4K,10M,1G] [--connections 32,256] [--duration 10]
                          [--threads 2] [--setups nginx,shipped,ods] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from common import (
    HOST,
    MIB,
    SAMPLE_INTERVAL_SECONDS,
    OdsServer,
    PeakSampler,
    filesystem_of,
    free_port,
    logged_in_client,
    machine_summary,
    markdown_table,
    ods_command,
    process_rss_probe,
    progress,
    running_server,
)
from upload import UPLOAD_TIMEOUT, Size, make_input, parse_sizes, upload

from tests.helpers.processes.nginx import SITE_CONFIG, nginx_binary, running_nginx, site_config
from tests.helpers.tls import self_signed_certificate

KIB = 1024
GIB = 1024 * MIB
SLICE = MIB  # bytes of each Range request
ACCEL_PREFIX = "/_ods_share/"  # the internal location of deploy/nginx/ods.conf
SETUPS = ("nginx", "shipped", "ods")
SETUP_NAMES = {"nginx": "Nginx-direct", "shipped": "shipped Nginx + ODS", "ods": "ODS alone"}
TARGET_RSS_GROWTH_MIB = 32
# Longer than any run: a download still going when wrk's default 2 s timeout
# passes would count as an error and its latency would be dropped.
WRK_TIMEOUT_EXTRA_SECONDS = 60
PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
BINARY_UNITS = {"": 1, "K": KIB, "M": MIB, "G": GIB, "T": 1024 * GIB, "P": 1024 * 1024 * GIB}
TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
TIME = r"([\d.]+)(us|ms|s|m|h)"
SIZE = r"([\d.]+)([KMGTP]?)B"


@dataclass(frozen=True)
class Target:
    """One of issue 15's targets: a ratio against Nginx-direct, or requests per second."""

    ratio: float | None = None
    requests_per_second: float | None = None

    def __str__(self) -> str:
        if self.ratio is not None:
            return f">= {self.ratio}x"
        return f">= {self.requests_per_second:,.0f} req/s"


# Whole-file downloads of the sizes; Range requests have no target of their own.
TARGETS: dict[tuple[str, int], Target] = {
    ("shipped", 4 * KIB): Target(ratio=0.5),
    ("shipped", 10 * MIB): Target(ratio=0.9),
    ("shipped", GIB): Target(ratio=0.9),
    ("ods", 4 * KIB): Target(requests_per_second=3000),
    ("ods", 10 * MIB): Target(ratio=0.5),
}


@dataclass(frozen=True)
class Package:
    size: Size
    filename: str
    sha1: str


@dataclass(frozen=True)
class Case:
    package: Package
    connections: int
    ranged: bool

    @property
    def kind(self) -> str:
        return "1 MiB range" if self.ranged else "whole"

    @property
    def answer_bytes(self) -> int:
        """Body bytes of one answer."""
        return SLICE if self.ranged else self.package.size.nbytes

    @property
    def by_requests(self) -> bool:
        """Compare small whole files by requests per second, the rest by bytes."""
        return not self.ranged and self.package.size.nbytes < MIB


@dataclass(frozen=True)
class Endpoint:
    """A URL prefix under test; `ods` is the server whose RSS counts and whose ETag is due."""

    setup: str
    scheme: str
    base_url: str
    ods: OdsServer | None = field(default=None, compare=False)

    def url(self, package: Package) -> str:
        return f"{self.base_url}/share/{quote(package.filename)}"


@dataclass(frozen=True)
class WrkRun:
    requests: int
    bytes_read: float
    requests_per_second: float
    bytes_per_second: float
    percentiles: dict[int, float]  # seconds
    errors: dict[str, int]  # only the counts above zero


@dataclass(frozen=True)
class Row:
    endpoint: Endpoint
    case: Case
    run: WrkRun
    problems: list[str]


@dataclass
class Memory:
    """RSS of one ODS setup's server: at start, before the first wrk run, peak per case."""

    setup: str
    at_start: int
    before_wrk: int = 0
    peaks: dict[Case, int] = field(default_factory=dict)


@dataclass
class Record:
    rows: list[Row] = field(default_factory=list)
    memory: list[Memory] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


def client_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key.lower() not in PROXY_VARIABLES}


def find_wrk() -> str:
    """wrk on the PATH, or Debian's wrk installed with apt-get (as root, or with sudo -n)."""
    found = shutil.which("wrk")
    if found is not None:
        return found
    if os.geteuid() == 0:
        prefix = []
    elif shutil.which("sudo") is not None:
        prefix = ["sudo", "-n"]
    else:
        sys.exit("bench/serve.py needs wrk: run `apt-get install wrk` as root (no sudo here)")
    progress("wrk is not installed; installing Debian's wrk with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*prefix, "apt-get", "install", "-y", "-qq", "wrk"]
    # apt-get's output goes to stderr with the progress: stdout is the report.
    if subprocess.run(install, env=env, stdout=sys.stderr, check=False).returncode != 0:
        # A fresh machine may not have the package lists yet.
        update = [*prefix, "apt-get", "update", "-qq"]
        subprocess.run(update, env=env, stdout=sys.stderr, check=False)
        subprocess.run(install, env=env, stdout=sys.stderr, check=False)
    found = shutil.which("wrk")
    if found is None:
        sys.exit(
            "bench/serve.py needs wrk, and `apt-get install wrk` failed; "
            "install it (sudo apt-get install wrk) and run again"
        )
    return found


def tls_settings() -> list[str]:
    """The shipped config's ssl_* lines other than the certificate's paths."""
    lines = [line.strip() for line in SITE_CONFIG.read_text(encoding="utf-8").splitlines()]
    settings = [
        line for line in lines if line.startswith("ssl_") and not line.startswith("ssl_certificate")
    ]
    if not any(line.startswith("ssl_protocols") for line in settings):
        raise AssertionError(f"{SITE_CONFIG} has no ssl_protocols line; update bench/serve.py")
    return settings


def nginx_conf(workdir: Path, site: Path) -> str:
    """The nginx.conf of both Nginx setups, like Debian's (worker per CPU, sendfile,
    tcp_nopush) but with no access log, with room for 256 clients plus as many
    upstream connections, and with its files in workdir."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # root's workers would be nobody
    return f"""{user}daemon off;
worker_processes auto;
worker_rlimit_nofile 8192;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    include {site};
}}
"""


def direct_site(share_dir: Path, http_port: int, https_port: int, cert: Path, key: Path) -> str:
    """Nginx serving the share dir itself, over http and https (the shipped TLS settings)."""
    tls = "\n    ".join(tls_settings())
    return f"""server {{
    listen {HOST}:{http_port};
    listen {HOST}:{https_port} ssl;
    ssl_certificate     {cert};
    ssl_certificate_key {key};
    {tls}

    location /share/ {{
        alias {share_dir}/;
    }}
}}
"""


@contextmanager
def nginx(workdir: Path, site: str, port: int, record: Record) -> Iterator[None]:
    """Nginx with the benchmark's nginx.conf and `site`, until the block ends."""
    workdir.mkdir(parents=True)
    site_path = workdir / "site.conf"
    site_path.write_text(site, encoding="utf-8")
    conf = workdir / "nginx.conf"
    record.commands.append(
        shlex.join([nginx_binary(), "-e", str(workdir / "error.log"), "-c", str(conf)])
    )
    with running_nginx(workdir, nginx_conf(workdir, site_path), port):
        yield


@contextmanager
def ods(
    data_dir: Path, log: Path, password: str, settings: dict[str, str], record: Record
) -> Iterator[OdsServer]:
    with running_server(data_dir, log, admin_password=password, settings=settings) as server:
        env = [f"{name}={value}" for name, value in {"DATA_DIR": str(data_dir), **settings}.items()]
        record.commands.append(
            shlex.join([*env, *ods_command(), "serve", "--host", HOST, "--port", str(server.port)])
        )
        yield server


def upload_packages(
    sizes: Sequence[Size], data_dir: Path, workdir: Path
) -> tuple[list[Package], str]:
    """One Public package per size, uploaded to a first `ods serve`; and its admin password."""
    packages = []
    with (
        running_server(data_dir, workdir / "ods-upload.log") as server,
        logged_in_client(server, UPLOAD_TIMEOUT) as client,
    ):
        password = server.admin_password
        for size in sizes:
            path = workdir / f"ods-serve-{size.label}.pkg"
            make_input(path, size.nbytes)
            progress(f"uploading {path.name}")
            answer = upload(client, path, path.name)
            path.unlink()
            packages.append(Package(size, path.name, answer.sha1))
    return packages, password


def headers_of(path: Path) -> dict[str, str]:
    """The last header block curl wrote with -D, names in lower case."""
    blocks = path.read_text(encoding="latin-1").replace("\r\n", "\n").strip().split("\n\n")
    headers = {}
    for line in blocks[-1].splitlines()[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def range_start(package: Package) -> int:
    """An offset a third into the file, odd so that it is on no block boundary."""
    return (package.size.nbytes - SLICE) // 3 | 1


def check_answer(curl: str, endpoint: Endpoint, case: Case, workdir: Path, record: Record) -> None:
    """One curl of what wrk will ask for: 200 (or 206 with the right Content-Range), the
    right Content-Length and body size, and ODS's ETag (the SHA1) where ODS answers."""
    package = case.package
    headers_path = workdir / "curl-headers.txt"
    command = [curl, "-sS", "-k", "-o", os.devnull, "-D", str(headers_path)]
    command += ["-w", "%{http_code} %{size_download}"]
    if case.ranged:
        start = range_start(package)
        command += ["-r", f"{start}-{start + SLICE - 1}"]
    command.append(endpoint.url(package))
    done = subprocess.run(
        command, capture_output=True, text=True, env=client_environment(), check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed: {done.stderr.strip()}")
    status, downloaded = done.stdout.split()
    headers = headers_of(headers_path)
    expected = {
        "status": "206" if case.ranged else "200",
        "bytes": str(case.answer_bytes),
        "content-length": str(case.answer_bytes),
    }
    got = {"status": status, "bytes": downloaded, "content-length": headers.get("content-length")}
    if case.ranged:
        start = range_start(package)
        expected["content-range"] = f"bytes {start}-{start + SLICE - 1}/{package.size.nbytes}"
        got["content-range"] = headers.get("content-range")
    if endpoint.ods is not None:
        expected["etag"] = f'"{package.sha1}"'
        got["etag"] = headers.get("etag")
    wrong = {name: (got[name], value) for name, value in expected.items() if got[name] != value}
    if wrong:
        details = "; ".join(
            f"{name} {have!r}, not {want!r}" for name, (have, want) in wrong.items()
        )
        raise RuntimeError(f"{endpoint.setup} {endpoint.url(package)} ({case.kind}): {details}")
    record.checks.append(shlex.join(command))


def check_accel(server: OdsServer, package: Package) -> None:
    """ODS itself answers the download with X-Accel-Redirect, so Nginx sends the bytes,
    and answers Nginx's check naming the version, for Nginx to reuse (X-Accel-Expires)."""
    url = f"{server.base_url}/share/{quote(package.filename)}"
    answer = httpx.get(url, trust_env=False)
    redirect = answer.headers.get("x-accel-redirect")
    if answer.status_code != 200 or redirect != ACCEL_PREFIX + quote(package.filename):
        raise RuntimeError(
            f"ods serve answered {answer.status_code} with X-Accel-Redirect {redirect!r} "
            f"for {package.filename}; ODS_ACCEL_REDIRECT is not in effect"
        )
    check = httpx.get(url, headers={"X-ODS-Check": "1"}, trust_env=False)
    named = (check.headers.get("x-ods-version"), check.headers.get("x-accel-expires"))
    if check.status_code != 200 or named != (package.sha1, "1"):
        raise RuntimeError(
            f"ods serve answered Nginx's check of {package.filename} with "
            f"{check.status_code}, X-ODS-Version and X-Accel-Expires {named}; "
            f"expected 200, {package.sha1} and 1"
        )


def range_script(package: Package, workdir: Path) -> Path:
    """A wrk script asking for 1 MiB slices of the file at random offsets, seeded per thread."""
    path = workdir / f"range-{package.size.label}.lua"
    path.write_text(
        f"""-- Range: bytes=<start>-<start + {SLICE - 1}> at random offsets of a
-- {package.size.nbytes}-byte file.
local size, slice = {package.size.nbytes}, {SLICE}
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

function init(args)
  math.randomseed(seed)
end

function request()
  local start = math.floor(math.random() * (size - slice + 1))
  local range = string.format("bytes=%d-%d", start, start + slice - 1)
  return wrk.format(nil, nil, {{["Range"] = range}})
end
""",
        encoding="utf-8",
    )
    return path


def seconds_of(value: str, unit: str) -> float:
    return float(value) * TIME_UNITS[unit]


def parse_wrk(output: str) -> WrkRun:
    """The figures of `wrk --latency` output (its byte units are 1024-based)."""
    totals = re.search(rf"^\s*(\d+) requests in {TIME}, {SIZE} read", output, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s*([\d.]+)", output, re.MULTILINE)
    transfer = re.search(rf"^Transfer/sec:\s*{SIZE}", output, re.MULTILINE)
    if totals is None or rate is None or transfer is None:
        raise RuntimeError(f"wrk's output is not as expected:\n{output}")
    percentiles = {
        int(percent): seconds_of(value, unit)
        for percent, value, unit in re.findall(rf"^\s*(\d+)%\s+{TIME}\s*$", output, re.MULTILINE)
    }
    errors = {}
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sockets is not None:
        for name, count in zip(
            ("connect", "read", "write", "timeout"), sockets.groups(), strict=True
        ):
            errors[name] = int(count)
    statuses = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if statuses is not None:
        errors["non-2xx"] = int(statuses.group(1))
    return WrkRun(
        requests=int(totals.group(1)),
        bytes_read=float(totals.group(4)) * BINARY_UNITS[totals.group(5)],
        requests_per_second=float(rate.group(1)),
        bytes_per_second=float(transfer.group(1)) * BINARY_UNITS[transfer.group(2)],
        percentiles=percentiles,
        errors={name: count for name, count in errors.items() if count},
    )


def size_problem(run: WrkRun, case: Case) -> str | None:
    """Whether the bytes read fit answers of the expected size.

    Each completed answer brings its body and headers (under 2 KiB); each
    connection may also be part-way through one more. wrk prints the bytes read
    with three significant figures, hence the 1 % of slack.
    """
    body = case.answer_bytes
    if run.requests and run.bytes_read < 0.99 * run.requests * body:
        return f"short answers: {run.bytes_read / run.requests:.0f} bytes each, body {body}"
    if run.bytes_read > 1.01 * (run.requests + case.connections) * (body + 2 * KIB):
        return "longer answers than asked for (Range ignored?)"
    return None


@dataclass(frozen=True)
class Wrk:
    binary: str
    threads: int
    duration: int
    workdir: Path

    def command(self, endpoint: Endpoint, case: Case) -> list[str]:
        command = [self.binary, f"-t{self.threads}", f"-c{case.connections}"]
        command += [f"-d{self.duration}s", "--latency"]
        command += ["--timeout", f"{self.duration + WRK_TIMEOUT_EXTRA_SECONDS}s"]
        if case.ranged:
            command += ["-s", str(range_script(case.package, self.workdir))]
        return [*command, endpoint.url(case.package)]

    def measure(self, endpoint: Endpoint, case: Case, record: Record) -> Row:
        command = self.command(endpoint, case)
        record.commands.append(shlex.join(command))
        progress(
            f"{SETUP_NAMES[endpoint.setup]} {endpoint.scheme} {case.package.size.label} "
            f"{case.kind}, {case.connections} connections, {self.duration} s"
        )
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=client_environment(),
            timeout=self.duration + 2 * WRK_TIMEOUT_EXTRA_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{shlex.join(command)} exited with {done.returncode}:\n{done.stderr}{done.stdout}"
            )
        run = parse_wrk(done.stdout)
        problems = [f"{name} {count}" for name, count in run.errors.items()]
        if (mismatch := size_problem(run, case)) is not None:
            problems.append(mismatch)
        if done.stderr.strip():
            problems.append(f"wrk: {done.stderr.strip()}")
        return Row(endpoint, case, run, problems)


def cases_of(packages: Sequence[Package], connections: Sequence[int]) -> list[Case]:
    cases = []
    for package in packages:
        for count in connections:
            cases.append(Case(package, count, ranged=False))
            if package.size.nbytes >= 2 * SLICE:
                cases.append(Case(package, count, ranged=True))
    return cases


def measure(
    wrk: Wrk,
    curl: str,
    endpoints: Sequence[Endpoint],
    cases: Sequence[Case],
    record: Record,
) -> None:
    """Check every endpoint once per case, then run wrk on each in turn, case by case.

    The RSS of an endpoint's ODS server is sampled during each of its runs.
    """
    memories: dict[str, Memory] = {}
    for endpoint in endpoints:
        rss = process_rss_probe(endpoint.ods.pid) if endpoint.ods is not None else None
        if rss is not None:
            memories[endpoint.setup] = Memory(endpoint.setup, at_start=rss())
        for case in cases:
            check_answer(curl, endpoint, case, wrk.workdir, record)
        if rss is not None:
            memories[endpoint.setup].before_wrk = rss()
    record.memory.extend(memories.values())
    for case in cases:
        for endpoint in endpoints:
            if endpoint.ods is None:
                record.rows.append(wrk.measure(endpoint, case, record))
                continue
            with PeakSampler({"rss": process_rss_probe(endpoint.ods.pid)}) as sampler:
                row = wrk.measure(endpoint, case, record)
            if endpoint.ods.process.poll() is not None:
                raise RuntimeError(f"ods serve exited with {endpoint.ods.process.returncode}")
            record.rows.append(row)
            memories[endpoint.setup].peaks[case] = sampler.peaks["rss"]


def run_benchmark(args: argparse.Namespace, workdir: Path, wrk_binary: str, curl: str) -> Record:
    record = Record()
    wrk = Wrk(wrk_binary, args.threads, args.duration, workdir)
    data_dir = workdir / "data"
    share_dir = data_dir / "share"
    cert, key = self_signed_certificate(workdir)
    packages, password = upload_packages(args.sizes, data_dir, workdir)
    cases = cases_of(packages, args.connections)
    setups = args.setups
    with ExitStack() as stack:
        direct: dict[str, Endpoint] = {}
        if "nginx" in setups:
            http_port, https_port = free_port(), free_port()
            stack.enter_context(
                nginx(
                    workdir / "nginx-direct",
                    direct_site(share_dir, http_port, https_port, cert, key),
                    https_port,
                    record,
                )
            )
            direct = {
                "http": Endpoint("nginx", "http", f"http://{HOST}:{http_port}"),
                "https": Endpoint("nginx", "https", f"https://{HOST}:{https_port}"),
            }
        if setups == ["nginx"]:
            measure(wrk, curl, [direct["http"], direct["https"]], cases, record)
        if "ods" in setups:
            progress("ODS alone")
            with ods(data_dir, workdir / "ods-alone.log", password, {}, record) as server:
                alone = Endpoint("ods", "http", server.base_url, server)
                measure(wrk, curl, [e for e in (direct.get("http"), alone) if e], cases, record)
        if "shipped" in setups:
            progress("the shipped Nginx config with ODS")
            settings = {"ODS_ACCEL_REDIRECT": ACCEL_PREFIX}
            with ods(data_dir, workdir / "ods-accel.log", password, settings, record) as server:
                check_accel(server, packages[0])
                https_port = free_port()
                checks = workdir / "nginx-shipped" / "checks"
                site = site_config(
                    [server.port], data_dir, free_port(), https_port, cert, key, checks
                )
                with nginx(workdir / "nginx-shipped", site, https_port, record):
                    shipped = Endpoint("shipped", "https", f"https://{HOST}:{https_port}", server)
                    endpoints = [e for e in (direct.get("https"), shipped) if e]
                    measure(wrk, curl, endpoints, cases, record)
    return record


def latency(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.2f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def figure(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def reference_of(row: Row, rows: Sequence[Row]) -> Row | None:
    for other in rows:
        if (
            other.endpoint.setup == "nginx"
            and other.endpoint.scheme == row.endpoint.scheme
            and other.case == row.case
        ):
            return other
    return None


def ratio_of(row: Row, reference: Row | None) -> float | None:
    if reference is None:
        return None
    if row.case.by_requests:
        mine, theirs = row.run.requests_per_second, reference.run.requests_per_second
    else:
        mine, theirs = row.run.bytes_per_second, reference.run.bytes_per_second
    return mine / theirs if theirs > 0 else None


def target_cell(row: Row, reference: Row | None, ratio: float | None) -> str:
    target = (
        None if row.case.ranged else TARGETS.get((row.endpoint.setup, row.case.package.size.nbytes))
    )
    if target is None:
        return "-"
    if row.problems or (reference is not None and reference.problems):
        return f"errors ({target})"
    if target.requests_per_second is not None:
        met = row.run.requests_per_second >= target.requests_per_second
    elif ratio is None:
        return f"no Nginx-direct ({target})"
    else:
        met = target.ratio is not None and ratio >= target.ratio
    return f"{'ok' if met else 'miss'} ({target})"


def ratio_text(ratio: float | None) -> str:
    """Two decimals, or two significant digits below 0.1 (0.0034 rather than 0.00)."""
    if ratio is None:
        return "-"
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"


def table_row(row: Row, rows: Sequence[Row]) -> list[str]:
    run = row.run
    reference = None if row.endpoint.setup == "nginx" else reference_of(row, rows)
    ratio = ratio_of(row, reference)
    return [
        SETUP_NAMES[row.endpoint.setup],
        row.endpoint.scheme,
        row.case.package.size.label,
        str(row.case.connections),
        row.case.kind,
        figure(run.requests_per_second),
        figure(run.bytes_per_second / MIB),
        latency(run.percentiles.get(50) if run.requests else None),
        latency(run.percentiles.get(99) if run.requests else None),
        ", ".join(row.problems) or "none",
        ratio_text(ratio),
        target_cell(row, reference, ratio),
    ]


def sort_key(row: Row) -> tuple[bool, int, bool, int, bool]:
    """http first, then by size, whole before range, by connections; Nginx-direct first."""
    case = row.case
    return (
        row.endpoint.scheme == "https",
        case.package.size.nbytes,
        case.ranged,
        case.connections,
        row.endpoint.setup != "nginx",
    )


def memory_rows(memory: Memory) -> list[str]:
    largest = max(
        memory.peaks, key=lambda case: (not case.ranged, case.package.size.nbytes, case.connections)
    )
    peak = memory.peaks[largest]
    growth = peak - memory.at_start
    met = growth < TARGET_RSS_GROWTH_MIB * MIB
    return [
        SETUP_NAMES[memory.setup],
        f"{memory.at_start / MIB:.0f}",
        f"{memory.before_wrk / MIB:.0f}",
        f"{largest.package.size.label} {largest.kind} x {largest.connections}",
        f"{peak / MIB:.0f}",
        f"{growth / MIB:.1f}",
        f"{max(memory.peaks.values()) / MIB:.0f}",
        f"{'ok' if met else 'miss'} (< {TARGET_RSS_GROWTH_MIB} MiB)",
    ]


def report(record: Record, args: argparse.Namespace, workdir: Path) -> str:
    rows = sorted(record.rows, key=sort_key)
    table = markdown_table(
        [
            "setup",
            "scheme",
            "size",
            "connections",
            "request",
            "req/s",
            "MiB/s",
            "p50",
            "p99",
            "errors",
            "ratio to Nginx-direct",
            "target",
        ],
        [table_row(row, rows) for row in rows],
    )
    parts = [
        "Downloads from /share",
        table,
        "Nginx-direct: Nginx serving DATA_DIR/share at /share/ itself (sendfile, tcp_nopush), "
        "over http and over https with the shipped config's TLS settings and the same "
        "self-signed certificate. Shipped Nginx + ODS: deploy/nginx/ods.conf with loopback "
        "ports, that certificate and this data dir, in front of `ods serve` with "
        f"ODS_ACCEL_REDIRECT={ACCEL_PREFIX} (Nginx has ODS check each download, reuses a "
        "check that needed no decision for a second and sends from DATA_DIR/versions/). "
        "ODS alone: `ods serve` (uvicorn, SQLite). Both "
        "Nginx setups use the same nginx.conf (a worker per CPU, sendfile, tcp_nopush, no "
        "access log). Ratio: against Nginx-direct with the same scheme, size, connections "
        "and request, taken just before; by requests per second for files under 1 MiB, by "
        "MiB/s otherwise. MiB/s is wrk's Transfer/sec (headers included, and the bytes of "
        "answers still under way at the end: with few answers completed, as for 1 GiB, it "
        "is the figure that counts). Latencies are wrk's, of completed answers only. A run "
        "with socket errors, non-2xx answers or answers of the wrong size says so under "
        "errors and meets no target. Targets (issue 15): whole files only. Range: "
        f"`Range: bytes=<start>-<start + {SLICE - 1}>` at random offsets; every setup was "
        "first checked with one curl (200, or 206 with the right Content-Range; "
        "Content-Length; ODS's ETag, the SHA1, where ODS answers).",
    ]
    if record.memory:
        parts += [
            "RSS of ODS (psutil, children included)",
            markdown_table(
                [
                    "setup",
                    "at start MiB",
                    "before wrk MiB",
                    "run",
                    "peak MiB",
                    "peak - start MiB",
                    "peak of all runs MiB",
                    "target",
                ],
                [memory_rows(memory) for memory in record.memory],
            ),
            f"Sampled every {SAMPLE_INTERVAL_SECONDS * 1000:.0f} ms during each wrk run; "
            "before wrk: after the curl checks. Target: flat, peak minus start under "
            f"{TARGET_RSS_GROWTH_MIB} MiB, for the largest whole file at the most connections.",
        ]
    commands = "\n".join(record.commands)
    parts += [
        "Commands",
        f"```\n{commands}\n```",
        f"Checked first with curl: {record.checks[0] if record.checks else '-'} (and the like).",
        f"--sizes {','.join(size.label for size in args.sizes)} "
        f"--connections {','.join(map(str, args.connections))} --duration {args.duration} "
        f"--threads {args.threads} --setups {','.join(args.setups)}. "
        f"Work dir on {filesystem_of(workdir)}. {machine_summary()}",
    ]
    return "\n\n".join(parts)


def connections_arg(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("connections must be positive integers")
    return counts


def sizes_arg(text: str) -> list[Size]:
    try:
        return parse_sizes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def setups_arg(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(SETUPS))
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(SETUPS)}")
    return [setup for setup in SETUPS if setup in chosen]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        type=sizes_arg,
        default="4K,10M,1G",
        help="package sizes, 1024-based (default 4K,10M,1G); 2M and up are also read in ranges",
    )
    parser.add_argument(
        "--connections",
        type=connections_arg,
        default="32,256",
        help="wrk's -c, one run each (default 32,256)",
    )
    parser.add_argument(
        "--duration", type=int, default=10, help="seconds of each wrk run (default 10)"
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk's -t (default 2)")
    parser.add_argument(
        "--setups",
        type=setups_arg,
        default="nginx,shipped,ods",
        help="any of nginx (Nginx-direct), shipped, ods (default all three)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path.cwd(),
        help="where to make the work dir (default: the current dir)",
    )
    args = parser.parse_args(argv)
    if args.duration < 1:
        parser.error("--duration must be at least 1")
    if args.threads < 1 or args.threads > min(args.connections):
        parser.error("--threads must be at least 1 and at most the fewest --connections")
    return args


def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, stop_on_sigterm)  # clean up as on Ctrl-C
    curl = shutil.which("curl")
    if curl is None:
        sys.exit("bench/serve.py needs curl on the PATH (it checks each setup's answer)")
    if {"nginx", "shipped"} & set(args.setups):
        try:
            nginx_binary()
        except RuntimeError as exc:
            sys.exit(f"bench/serve.py: {exc}")
    wrk_binary = find_wrk()
    args.dir.mkdir(parents=True, exist_ok=True)
    need = sum(size.nbytes for size in args.sizes) + max(size.nbytes for size in args.sizes)
    free = shutil.disk_usage(args.dir).free
    if free < need + 512 * MIB:
        sys.exit(f"{args.dir} has {free / MIB:.0f} MiB free; this run needs {need / MIB + 512:.0f}")
    workdir = Path(tempfile.mkdtemp(prefix="ods-bench-serve-", dir=args.dir))
    progress(f"work dir {workdir} on {filesystem_of(workdir)}")
    try:
        record = run_benchmark(args, workdir, wrk_binary, curl)
        print(report(record, args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
