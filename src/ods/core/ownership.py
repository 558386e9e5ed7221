"""This process's identity as the owner of work in flight.

Each `ods serve` and `ods worker` process gets an id at start: its host
name, its pid and a random part, so a restarted process never takes its
predecessor's id. Staging files carry the id in their name and job rows in
their `owner` column; `ods.jobs.owners` keeps each process's lease in the
database and decides which work is abandoned.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from dataclasses import dataclass

UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def this_machine() -> str:
    """The host name, and the pid namespace where it can be read: two processes with the
    same machine see each other's pids (containers with one host name do not)."""
    try:
        namespace = f"/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        namespace = ""
    return f"{socket.gethostname()[:120]}{namespace}"


@dataclass(frozen=True)
class Owner:
    id: str
    machine: str
    pid: int

    @classmethod
    def of_this_process(cls) -> Owner:
        pid = os.getpid()
        host = UNSAFE.sub("-", socket.gethostname())[:60] or "host"
        return cls(id=f"{host}.{pid}.{secrets.token_hex(4)}", machine=this_machine(), pid=pid)
