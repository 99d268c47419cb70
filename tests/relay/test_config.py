"""Settings: flags over the file over systemd's directories over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from carnet.protocol.errors import InvalidConfig
from carnet.relay.config import parse_listen, read_file, resolve


def test_precedence(tmp_path: Path) -> None:
    (tmp_path / "relay.toml").write_text('listen = "0.0.0.0:9000"\ndata = "/srv/relay"\n')
    env = {"CONFIGURATION_DIRECTORY": f"{tmp_path}:/elsewhere", "STATE_DIRECTORY": "/var/lib/r"}
    from_file = read_file(None, env)
    config = resolve(from_file, {"listen": None, "data": None}, env)
    assert (config.host, config.port, config.data) == ("0.0.0.0", 9000, Path("/srv/relay"))
    config = resolve(from_file, {"listen": "127.0.0.1:0", "data": Path("/d")}, env)
    assert (config.host, config.port, config.data) == ("127.0.0.1", 0, Path("/d"))
    config = resolve({}, {}, env)
    assert (config.host, config.port, config.data) == ("127.0.0.1", 8470, Path("/var/lib/r"))
    assert read_file(None, {}) == {}  # no file anywhere is fine


@pytest.mark.parametrize(
    ("text", "expected"),
    [("[::1]:8470", ("::1", 8470)), ("localhost:0", ("localhost", 0)), ("1.2.3.4:65535", None)],
)
def test_listen(text: str, expected: tuple[str, int] | None) -> None:
    assert parse_listen(text) == (expected or ("1.2.3.4", 65535))


@pytest.mark.parametrize("text", ["8470", ":8470", "host:", "host:70000", "host:８４"])
def test_bad_listen(text: str) -> None:
    with pytest.raises(InvalidConfig):
        parse_listen(text)


@pytest.mark.parametrize(
    "values",
    [{"log_level": "loud"}, {"sweep_interval": 0}, {"heartbeat": True}, {"data": 5}],
)
def test_bad_values(values: dict[str, object]) -> None:
    with pytest.raises(InvalidConfig):
        resolve({"data": "/d", **values}, {}, {})
