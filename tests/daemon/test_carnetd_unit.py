"""systemd/carnetd.service: valid for systemd, hardened to an exposure of at most 2.0."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "carnetd.service"
ANALYZE = shutil.which("systemd-analyze")
MAX_EXPOSURE = 2.0

pytestmark = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (Debian: apt-get install systemd)"
)


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """The unit, with ExecStart= on a program that exists here (verify checks it)."""
    text = UNIT.read_text()
    assert "\nExecStart=%h/.local/bin/carnetd\n" in text
    copy = tmp_path / "carnetd.service"
    copy.write_text(
        text.replace(
            "ExecStart=%h/.local/bin/carnetd", f"ExecStart={sys.executable} -m carnet.daemon.main"
        )
    )
    return copy


def analyze(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A user manager needs a runtime folder; CI and containers often have none.
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_COLOR": "0"}
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )


def test_the_unit_declares_the_service_protocol() -> None:
    settings = dict(
        line.split("=", 1) for line in UNIT.read_text().splitlines() if re.match(r"^\w+=", line)
    )
    assert settings["Type"] == "notify"
    assert settings["Restart"] == "on-failure"
    assert settings["RestartPreventExitStatus"] == "78"
    assert settings["WatchdogSec"]
    assert settings["WantedBy"] == "default.target"  # a user unit


@pytest.mark.parametrize("scope", [(), ("--user",)], ids=["system", "user"])
def test_systemd_analyze_verify_passes(unit: Path, tmp_path: Path, scope: tuple[str, ...]) -> None:
    result = analyze(tmp_path, "verify", *scope, str(unit))
    if scope and "Failed to initialize manager" in result.stderr:
        pytest.skip(f"no user manager can start here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert "carnetd.service" not in result.stderr, result.stderr


@pytest.mark.parametrize("scope", [(), ("--user",)], ids=["system", "user"])
def test_exposure_is_at_most_2(unit: Path, tmp_path: Path, scope: tuple[str, ...]) -> None:
    result = analyze(tmp_path, "security", "--offline=true", *scope, str(unit))
    if scope and "Failed to initialize manager" in result.stderr:
        pytest.skip(f"no user manager can start here: {result.stderr.strip()}")
    found = re.search(r"Overall exposure level for carnetd\.service: ([\d.]+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE
