"""A size-limited tmpfs for disk-full tests (mounting needs root, which the test machines have)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path, leave_bytes: int) -> Path:
    """Write a filler file until about ``leave_bytes`` stay free on path's file system."""
    import os

    free = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize
    filler = path / "filler"
    with filler.open("wb") as out:
        out.write(b"\0" * max(free - leave_bytes, 0))
    return filler
