"""A small disk that fills up for real: a tmpfs mounted for one test.

Mounting needs root, which CI has; anywhere else the test fails loudly
rather than skip, so a disk-full case is never silently left untested.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def small_disk(path: Path, size_mib: int) -> Iterator[Path]:
    """A tmpfs of `size_mib` MiB mounted on `path` while the block runs."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m,mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        raise AssertionError(
            f"could not mount a {size_mib} MiB tmpfs on {path} (the disk-full tests run as "
            f"root, as CI does): {mounted.stderr.strip()}"
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def fill(disk: Path, leave: int, name: str = "filler.bin") -> Path:
    """Take all but `leave` bytes of the disk with one file; remove the file to free them."""
    filler = disk / name
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        size = free_bytes(disk) - leave
        if size > 0:
            os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)
    return filler
