from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from carnet.cli.main import cli

Run = Callable[..., Result]


@pytest.fixture
def carnet(tmp_path: Path) -> Run:
    """Run `carnet ARGS...` in-process against a fresh CARNET_HOME."""
    home = tmp_path / "home"
    runner = CliRunner()

    def run(*args: str, home_dir: Path = home, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), env={"CARNET_HOME": str(home_dir)}, input=input)

    return run


@pytest.fixture
def initialised(carnet: Run) -> Run:
    result = carnet("init", "--relay", "http://127.0.0.1:9", "--no-passphrase")
    assert result.exit_code == 0, result.output
    return carnet
