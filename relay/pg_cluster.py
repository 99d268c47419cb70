"""A throwaway PostgreSQL server, for tests and benchmarks (never for production).

    with PostgresCluster.start() as cluster:
        dsn = cluster.create_database("t1")
        ...
        cluster.restart()        # same port and data: what a relay sees of a DB restart

It uses the server binaries of Debian's ``postgresql`` package
(``/usr/lib/postgresql/*/bin``). ``initdb`` refuses to run as root, and CI runs
as root: then every server command runs as the ``postgres`` system user through
``runuser``, in a directory under /tmp that user owns (pytest's own temporary
directories are private to root). Connections use TCP on 127.0.0.1 with trust
authentication, so a DSN is all a client needs.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

SERVER_USER = "postgres"
DEFAULT_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
}


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries, or the server would not start."""


def find_bin_dir() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise PostgresUnavailable("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
    return found[-1].parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    def __init__(self, root: Path, bin_dir: Path, port: int, settings: dict[str, str]) -> None:
        self.root = root
        self.bin_dir = bin_dir
        self.port = port
        self.settings = settings
        self.data = root / "data"
        self.log = root / "server.log"

    @classmethod
    def start(cls, *, durable: bool = False, **settings: str) -> PostgresCluster:
        """initdb into a fresh directory and start the server on a free port.

        `durable=False` turns fsync off: tests need a server that behaves like
        PostgreSQL, not one that survives power loss. Benchmarks pass True.
        """
        bin_dir = find_bin_dir()
        root = Path(tempfile.mkdtemp(prefix="carnet-pg-"))
        merged = {**DEFAULT_SETTINGS, **({} if durable else {"fsync": "off"}), **settings}
        cluster = cls(root, bin_dir, free_port(), merged)
        try:
            cluster._as_server_user_owning(root)
            cluster._run(
                "initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust",
                "-E", "UTF8", "--no-sync",
            )  # fmt: skip
            cluster.up()
        except BaseException:
            cluster.remove()
            raise
        return cluster

    def _as_server_user_owning(self, path: Path) -> None:
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise PostgresUnavailable(f"no {SERVER_USER} system user to run it") from None
            os.chown(path, user.pw_uid, user.pw_gid)
        path.chmod(0o700)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.root)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise PostgresUnavailable(f"{program} failed: {' / '.join(tail)}")

    def up(self) -> None:
        """Start (or start again) the server on the same port and data."""
        options = " ".join(f"-c {key}={value}" for key, value in self.settings.items())
        options += f" -p {self.port} -k {self.root}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def down(self, mode: str = "fast") -> None:
        """Stop the server: "fast" (clients cut off, clean shutdown) or "immediate" (a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.down()
        self.up()

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with psql; returns its unaligned output (rows, one a line)."""
        done = subprocess.run(
            [str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-d", self.dsn(database), "-c", sql],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def create_database(self, name: str) -> str:
        """A new empty database; returns its DSN."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(PostgresUnavailable):
                self.down("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()
