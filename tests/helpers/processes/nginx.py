"""A real Nginx with the shipped site config (deploy/nginx/ods.conf) in front of ODS.

The config is used as an admin would install it, with only what differs on
a test machine replaced: loopback ports instead of 80 and 443, a generated
certificate, the ODS processes' ports (one upstream server line each, as the
scale-out recipe in docs/install.md has it) and the data dir. Nginx runs as one process in
the foreground, with its pid, logs and temp files in a work dir.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.processes.serve import free_port

SITE_CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "nginx" / "ods.conf"
START_SECONDS = 15.0


@dataclass
class Nginx:
    https_port: int
    workdir: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def access_log(self) -> str:
        return (self.workdir / "access.log").read_text(encoding="utf-8", errors="replace")


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()),
        None,
    )
    if found is None:
        raise RuntimeError("nginx is not installed (scripts/test installs it with apt)")
    return found


def site_config(
    ods_ports: Sequence[int],
    data_dir: Path,
    http_port: int,
    https_port: int,
    cert: Path,
    key: Path,
    cache_dir: Path,
) -> str:
    """deploy/nginx/ods.conf with this machine's ports, certificate, data dir and a
    dir for Nginx's cache of download checks (Nginx makes it)."""
    text = SITE_CONFIG.read_text(encoding="utf-8")
    upstreams = "\n    ".join(f"server 127.0.0.1:{port};" for port in ods_ports)
    for old, new in [
        ("server 127.0.0.1:8000;", upstreams),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen [::]:80;", ""),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("listen [::]:443 ssl;", ""),
        ("/etc/ssl/ods/fullchain.pem", str(cert)),
        ("/etc/ssl/ods/privkey.pem", str(key)),
        ("alias /var/lib/ods/share/;", f"alias {data_dir}/share/;"),
        ("alias /var/lib/ods/versions/", f"alias {data_dir}/versions/"),
        ("proxy_cache_path /var/cache/ods-nginx ", f"proxy_cache_path {cache_dir} "),
    ]:
        if old not in text:
            raise AssertionError(f"{SITE_CONFIG} no longer has {old!r}; update this helper")
        text = text.replace(old, new)
    return text


def main_config(workdir: Path) -> str:
    return f"""
daemon off;
master_process off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {workdir}/access.log;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    include {workdir}/ods.conf;
}}
"""


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def running_nginx(workdir: Path, nginx_conf: str, port: int) -> Iterator[None]:
    """Nginx in the foreground with `nginx_conf` as workdir/nginx.conf, from when it accepts
    connections on `port` until the block ends. Its error log is workdir/error.log."""
    (workdir / "nginx.conf").write_text(nginx_conf, encoding="utf-8")
    with (workdir / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            [nginx_binary(), "-e", str(workdir / "error.log"), "-c", str(workdir / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _accepts(port):
            if process.poll() is not None or time.monotonic() > deadline:
                errors = (workdir / "error.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"nginx did not start on {port}:\n{errors}")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def nginx_in_front_of(
    ods_port: int | Sequence[int], data_dir: Path, cert: Path, key: Path, workdir: Path
) -> Iterator[Nginx]:
    """Nginx in front of one `ods serve` (a port) or several on one data dir (their ports)."""
    ods_ports = [ods_port] if isinstance(ods_port, int) else list(ods_port)
    workdir.mkdir(parents=True)
    https_port = free_port()
    (workdir / "ods.conf").write_text(
        site_config(ods_ports, data_dir, free_port(), https_port, cert, key, workdir / "checks"),
        encoding="utf-8",
    )
    with running_nginx(workdir, main_config(workdir), https_port):
        yield Nginx(https_port, workdir)
