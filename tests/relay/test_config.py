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


def test_limits_and_database_settings() -> None:
    config = resolve(
        {
            "database": "postgresql://relay@db/carnet",
            "trusted_proxies": ["127.0.0.1", "10.0.0.0/8"],
            "rate_per_address": 0,
            "max_entry_bytes": 2048,
            "mailbox_max_bytes": 10**9,
        },
        {"max_batch_entries": 8},
        {},
    )
    assert config.database == "postgresql://relay@db/carnet" and config.data is None
    limits = config.limits
    assert [str(n) for n in limits.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8"]
    assert (limits.rate_per_address, limits.rate_per_connection) == (0.0, 50.0)
    assert (limits.max_entry_bytes, limits.max_batch_entries) == (2048, 8)
    assert (limits.quota.max_entries, limits.quota.max_bytes) == (0, 10**9)
    assert limits.max_body_bytes == 8 * (4 * 683 + 128) + 1024  # base64 and JSON framing


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"database": "mysql://x"}, "postgresql:// URL"),
        ({"trusted_proxies": ["nowhere"]}, "trusted_proxies"),
        ({"trusted_proxies": "127.0.0.1"}, "list of strings"),
        ({"max_entry_bytes": 70_000}, "max_entry_bytes must be a number from 1 to 65577"),
        ({"max_batch_entries": 0}, "from 1 to 64"),
        ({"rate_per_address": -1}, "from 0"),
        ({"database_pool": 2.5}, "database_pool"),
    ],
)
def test_bad_limits(values: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidConfig, match=reason):
        resolve({"data": "/d", **values}, {}, {})
