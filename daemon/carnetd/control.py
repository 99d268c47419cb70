"""The control socket: a Unix datagram socket in the data folder that the CLI pokes
after it commits a change, so carnetd pushes it at once instead of polling.

A poke carries no data worth guarding (it only says "look at the store"), and
a datagram needs no connection: the CLI sends it without waiting and a missing
or stopped daemon costs it nothing. The socket lives in the data folder
(mode 0700), so only the device's owner can reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

from carnet.daemon.paths import Paths

log = logging.getLogger("carnetd.control")

PUSH = b"push"
# Longer messages are not ours; reading more would only waste memory.
MAX_MESSAGE = 64


def poke(paths: Paths) -> bool:
    """Tell a running carnetd that the store changed; False (silently) if none listens."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)
            sock.sendto(PUSH, str(paths.daemon_socket))
    except OSError:  # no daemon, a stale socket, a full queue: the daemon syncs later anyway
        return False
    return True


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, on_push: Callable[[], None]) -> None:
        self.on_push = on_push

    def datagram_received(self, data: bytes, addr: object) -> None:
        if data[:MAX_MESSAGE] == PUSH:
            self.on_push()


class ControlSocket:
    """The daemon's end: calls `on_push` for every poke until closed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._transport: asyncio.DatagramTransport | None = None

    async def open(self, on_push: Callable[[], None]) -> bool:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            # A socket left by a killed daemon; we hold the pid lock, so it is not live.
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            sock.bind(str(self.path))
            os.chmod(self.path, 0o600)
        except OSError as exc:
            sock.close()
            # E.g. a path over the 107-byte limit of AF_UNIX: sync still follows the
            # relay and every restart, only local changes wait for the next round.
            log.warning("control socket unavailable (%s); local changes sync later", exc.strerror)
            return False
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Receiver(on_push), sock=sock
        )
        return True

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            with contextlib.suppress(OSError):
                self.path.unlink()
