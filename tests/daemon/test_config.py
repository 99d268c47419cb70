from pathlib import Path

import pytest

from carnet.daemon.config import Config
from carnet.protocol.errors import InvalidConfig


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    Config(relay="http://file", name="Ana").save(path)
    env = {"CARNET_RELAY": "http://env", "CARNET_REMINDER_LEADS": "3h, 10m"}
    config = Config.load(path, env)
    assert (config.relay, config.name, config.reminder_leads) == (
        "http://env",
        "Ana",
        ["3h", "10m"],
    )
    assert Config.load(path, env, relay="http://flag").relay == "http://flag"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("relay = ", "config.toml"),
        ("colour = 'red'", "unknown setting 'colour'"),
        ("push_debounce_ms = 'fast'", "push_debounce_ms must be"),
        ("relay = 'ftp://x'", "must start with http"),
    ],
)
def test_bad_config_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(InvalidConfig, match=message) as err:
        Config.load(path, {})
    assert "\n" not in str(err.value)
