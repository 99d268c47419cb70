"""carnetd's live status: a small JSON file for `carnet status`, and systemd STATUS= lines.

The file (mode 0600, replaced atomically) says what the daemon last did with
the relay; whether the daemon runs at all comes from its pid lock, so a file
left behind by a killed daemon is never mistaken for a live one.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from carnet.daemon.carnetd.pidfile import running_pid
from carnet.daemon.paths import Paths
from carnet.daemon.records import now_iso
from carnet.service.systemd import notify


class StatusBoard:
    """What the daemon's parts report, written out whenever it changes."""

    def __init__(self, path: Path, **initial: Any) -> None:
        self.path = path
        self.state: dict[str, Any] = {
            "pid": os.getpid(),
            "started": now_iso(),
            "state": "starting",
            "relay_reachable": None,
            "subscribed": False,
            "last_sync_attempt": None,
            "last_sync_result": None,
            "last_error": None,
            "next_reminder": None,
            **initial,
        }
        self._line = ""

    def update(self, **changes: Any) -> None:
        if all(self.state.get(k) == v for k, v in changes.items()) and self.path.exists():
            return
        self.state.update(changes)
        self._write()
        line = self.summary()
        if line != self._line:
            self._line = line
            notify(f"STATUS={line}")

    def summary(self) -> str:
        """One line for systemd's status display (no record contents, as in the log)."""
        s = self.state
        if s["state"] != "running":
            return str(s["state"])
        if s["relay_reachable"] is False:
            return "offline: relay unreachable, retrying"
        if s["last_sync_result"] == "refused":
            return "sync stopped: the relay served entries that failed verification"
        synced = s["last_sync_attempt"] and datetime.fromisoformat(s["last_sync_attempt"])
        when = synced.astimezone().strftime("%H:%M") if synced else "not yet"
        return f"live; last sync {when}" if s["subscribed"] else f"last sync {when}"

    def _write(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(self.state, out)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def daemon_state(paths: Paths) -> dict[str, Any]:
    """For `carnet status`: whether carnetd runs and, if so, what it last reported."""
    pid = running_pid(paths.daemon_pid)
    if pid is None:
        return {"running": False}
    state: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        state = json.loads(paths.daemon_status.read_text())
    return {**state, "running": True, "pid": pid if pid > 0 else state.get("pid")}
