"""The relay's settings: flags over a TOML file over systemd's directories over defaults.

The file is ``--config FILE`` or ``$CONFIGURATION_DIRECTORY/relay.toml``; the
data directory defaults to ``$STATE_DIRECTORY``. Unknown keys are refused
rather than ignored, so a typo cannot silently fall back to a default.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carnet.protocol.errors import InvalidConfig

CONFIG_NAME = "relay.toml"
DEFAULT_LISTEN = "127.0.0.1:8470"
LOG_LEVELS = ("debug", "info", "warning", "error")
_DURATIONS = {"heartbeat": 30.0, "sweep_interval": 60.0, "shutdown_timeout": 10.0}
_TEXTS = ("listen", "data", "log_level")


@dataclass(frozen=True)
class RelayConfig:
    host: str
    port: int
    data: Path
    log_level: str = "info"
    heartbeat: float = _DURATIONS["heartbeat"]
    sweep_interval: float = _DURATIONS["sweep_interval"]
    shutdown_timeout: float = _DURATIONS["shutdown_timeout"]

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
    unknown = set(values) - set(_TEXTS) - set(_DURATIONS)
    if unknown:
        raise InvalidConfig(f"{path}: unknown setting {sorted(unknown)[0]!r}")
    return values


def _duration(values: Mapping[str, Any], key: str) -> float:
    value = values.get(key, _DURATIONS[key])
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 86400:
        raise InvalidConfig(f"{key} must be a number of seconds, 0 to 86400")
    return float(value)


def resolve(
    file_values: Mapping[str, Any],
    flags: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
) -> RelayConfig:
    """Merge flags (None = not given) over the file's values and the environment."""
    env = os.environ if env is None else env
    values = {**file_values, **{key: value for key, value in flags.items() if value is not None}}
    for key in _TEXTS:
        if key in values and not isinstance(values[key], str | Path):
            raise InvalidConfig(f"{key} must be a string")
    data = values.get("data") or _first_dir(env, "STATE_DIRECTORY")
    if not data:
        raise InvalidConfig("no data directory: pass --data, set data, or $STATE_DIRECTORY")
    log_level = str(values.get("log_level", "info")).lower()
    if log_level not in LOG_LEVELS:
        raise InvalidConfig(f"log_level must be one of {', '.join(LOG_LEVELS)}")
    host, port = parse_listen(str(values.get("listen", DEFAULT_LISTEN)))
    return RelayConfig(
        host=host,
        port=port,
        data=Path(data),
        log_level=log_level,
        heartbeat=_duration(values, "heartbeat"),
        sweep_interval=_duration(values, "sweep_interval"),
        shutdown_timeout=_duration(values, "shutdown_timeout"),
    )
