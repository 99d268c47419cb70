"""The relay's settings: flags over a TOML file over systemd's directories over defaults.

The file is ``--config FILE`` or ``$CONFIGURATION_DIRECTORY/relay.toml``; the
data directory defaults to ``$STATE_DIRECTORY``. Unknown keys are refused
rather than ignored, so a typo cannot silently fall back to a default. Each
setting is declared once in ``SETTINGS``: its kind, default and bounds.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carnet.protocol import wire
from carnet.protocol.errors import InvalidConfig
from carnet.relay.limits import Limits, parse_networks
from carnet.relay.storage.base import Quota

CONFIG_NAME = "relay.toml"
DEFAULT_LISTEN = "127.0.0.1:8470"
LOG_LEVELS = ("debug", "info", "warning", "error")
DATABASE_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class Setting:
    """A value of `kind` (str, float, int or list of str) with low < value <= high;
    a `low` of -1 admits 0, which for limits means "none"."""

    kind: type
    default: Any
    low: float = 0
    high: float = 0


_DAY = 86400.0
SETTINGS: dict[str, Setting] = {
    "listen": Setting(str, DEFAULT_LISTEN),
    "data": Setting(str, None),
    "database": Setting(str, None),
    "log_level": Setting(str, "info"),
    "metrics_token": Setting(str, None),
    "heartbeat": Setting(float, 30.0, 0, _DAY),
    "sweep_interval": Setting(float, 60.0, 0, _DAY),
    "shutdown_timeout": Setting(float, 10.0, 0, _DAY),
    "database_wait": Setting(float, 30.0, -1, _DAY),
    "database_pool": Setting(int, 10, 0, 1000),
    # Generous for people, tight for a script: a device's sync round is a few requests.
    "rate_per_address": Setting(float, 100.0, -1, 1e6),
    "burst_per_address": Setting(int, 200, 0, 1e6),
    "rate_per_connection": Setting(float, 50.0, -1, 1e6),
    "burst_per_connection": Setting(int, 100, 0, 1e6),
    "trusted_proxies": Setting(list, []),
    "max_entry_bytes": Setting(int, wire.MAX_ENTRY_BYTES, 0, wire.MAX_ENTRY_BYTES),
    "max_batch_entries": Setting(int, wire.MAX_BATCH_ENTRIES, 0, wire.MAX_BATCH_ENTRIES),
    "mailbox_max_entries": Setting(int, 0, -1, 2**62),
    "mailbox_max_bytes": Setting(int, 0, -1, 2**62),
}


@dataclass(frozen=True)
class RelayConfig:
    host: str
    port: int
    data: Path | None = None
    database: str | None = None
    log_level: str = "info"
    heartbeat: float = SETTINGS["heartbeat"].default
    sweep_interval: float = SETTINGS["sweep_interval"].default
    shutdown_timeout: float = SETTINGS["shutdown_timeout"].default
    database_wait: float = SETTINGS["database_wait"].default
    database_pool: int = SETTINGS["database_pool"].default
    metrics_token: str | None = None
    limits: Limits = field(default_factory=Limits)

    @property
    def log_level_number(self) -> int:
        return int(logging.getLevelName(self.log_level.upper()))


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPV6]:PORT``; port 0 picks a free port."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise InvalidConfig(f"listen must be HOST:PORT, not {text!r}")
    return host, int(port)


def _first_dir(env: Mapping[str, str], name: str) -> Path | None:
    # systemd lists one path per StateDirectory=/ConfigurationDirectory= entry, ':'-separated.
    value = env.get(name, "").split(":")[0]
    return Path(value) if value else None


def read_file(explicit: Path | None, env: Mapping[str, str]) -> dict[str, Any]:
    """The config file's settings, {} when there is none to read."""
    path = explicit
    if path is None:
        config_dir = _first_dir(env, "CONFIGURATION_DIRECTORY")
        path = config_dir / CONFIG_NAME if config_dir else None
        if path is None or not path.exists():
            return {}
    try:
        with path.open("rb") as file:
            values = tomllib.load(file)
    except OSError as exc:
        raise InvalidConfig(f"cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidConfig(f"{path}: {exc}") from None
    unknown = set(values) - set(SETTINGS)
    if unknown:
        raise InvalidConfig(f"{path}: unknown setting {sorted(unknown)[0]!r}")
    return values


def _value(values: Mapping[str, Any], key: str) -> Any:
    """The setting's value, checked against its kind and bounds (low is exclusive)."""
    setting = SETTINGS[key]
    value = values.get(key, setting.default)
    if value is None or setting.kind is str:
        if value is not None and not isinstance(value, str | Path):
            raise InvalidConfig(f"{key} must be a string")
        return value
    if setting.kind is list:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise InvalidConfig(f"{key} must be a list of strings")
        return list(value)
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if setting.kind is int:
        numeric = numeric and float(value).is_integer()
    if not numeric or not setting.low < value <= setting.high:
        if setting.low < 0:
            span = f"from 0 to {setting.high:g}"
        elif setting.kind is int:
            span = f"from {setting.low + 1:g} to {setting.high:g}"
        else:
            span = f"above {setting.low:g}, up to {setting.high:g}"
        raise InvalidConfig(f"{key} must be a number {span}")
    return setting.kind(value)


def _limits(values: Mapping[str, Any]) -> Limits:
    try:
        proxies = parse_networks(_value(values, "trusted_proxies"))
    except ValueError as exc:
        raise InvalidConfig(f"trusted_proxies: {exc}") from None
    return Limits(
        max_entry_bytes=_value(values, "max_entry_bytes"),
        max_batch_entries=_value(values, "max_batch_entries"),
        rate_per_address=_value(values, "rate_per_address"),
        burst_per_address=_value(values, "burst_per_address"),
        rate_per_connection=_value(values, "rate_per_connection"),
        burst_per_connection=_value(values, "burst_per_connection"),
        trusted_proxies=proxies,
        quota=Quota(_value(values, "mailbox_max_entries"), _value(values, "mailbox_max_bytes")),
    )


def resolve(
    file_values: Mapping[str, Any],
    flags: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    *,
    need_store: bool = True,
) -> RelayConfig:
    """Merge flags (None = not given) over the file's values and the environment."""
    env = os.environ if env is None else env
    values = {**file_values, **{key: value for key, value in flags.items() if value is not None}}
    database = _value(values, "database") or None
    if database is not None and not str(database).startswith(DATABASE_SCHEMES):
        raise InvalidConfig("database must be a postgresql:// URL")
    data = _value(values, "data") or _first_dir(env, "STATE_DIRECTORY")
    if need_store and not data and not database:
        raise InvalidConfig(
            "no store: pass --database or --data, set database or data, or $STATE_DIRECTORY"
        )
    log_level = str(_value(values, "log_level")).lower()
    if log_level not in LOG_LEVELS:
        raise InvalidConfig(f"log_level must be one of {', '.join(LOG_LEVELS)}")
    host, port = parse_listen(str(_value(values, "listen")))
    return RelayConfig(
        host=host,
        port=port,
        data=Path(data) if data else None,
        database=database,
        log_level=log_level,
        heartbeat=_value(values, "heartbeat"),
        sweep_interval=_value(values, "sweep_interval"),
        shutdown_timeout=_value(values, "shutdown_timeout"),
        database_wait=_value(values, "database_wait"),
        database_pool=_value(values, "database_pool"),
        metrics_token=_value(values, "metrics_token") or None,
        limits=_limits(values),
    )
