#!/usr/bin/env python3
"""Bootstrap and run carnet from a fresh checkout: `python3 dev.py demo|test|bench ...`.

Creates `.venv` with carnet and its test tools installed (once, and again when
pyproject.toml changes), installs what the tests need from the system when
possible, then runs the demo, the test suite or a benchmark inside it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".carnet-installed"


def ensure_venv() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        print("dev.py: creating .venv", file=sys.stderr)
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except subprocess.CalledProcessError:
            # Debian splits ensurepip into python3-venv; install it when we can.
            shutil.rmtree(VENV, ignore_errors=True)
            apt_install(f"python3.{sys.version_info.minor}-venv")
            venv.EnvBuilder(with_pip=True).create(VENV)
    print("dev.py: installing carnet and its test tools into .venv", file=sys.stderr)
    subprocess.run(
        [
            str(PYTHON),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-e",
            f"{ROOT}[test]",
        ],
        check=True,
    )
    STAMP.write_text(wanted)


def ensure_system_tools() -> None:
    """PostgreSQL's server binaries, for the relay's PostgreSQL backend tests (required in
    CI, where they fail without it), and nginx for the self-hosting guide's proxy test
    (optional: it skips without nginx, so a failed install does not stop the run)."""
    has_postgres = bool(list(Path("/usr/lib/postgresql").glob("*/bin/initdb")))
    if not has_postgres and not apt_install("postgresql"):
        print(
            "dev.py: PostgreSQL server binaries missing and not installable here", file=sys.stderr
        )
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        try:
            apt_install("nginx-light")
        except subprocess.CalledProcessError:
            print("dev.py: nginx not installable; its test will skip", file=sys.stderr)


def apt_install(package: str) -> bool:
    """Install a Debian package when running as root with apt-get; False otherwise."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    print(f"dev.py: installing {package} with apt-get", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)
    return True


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "bench"}:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "demo":
        args = [str(PYTHON), str(ROOT / "scripts" / "demo.py"), *rest]
    elif command == "bench":
        args = [str(PYTHON), "-m", "bench", *rest]
    else:
        ensure_system_tools()
        args = [str(PYTHON), "-m", "pytest", *rest]
    return subprocess.run(args, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
