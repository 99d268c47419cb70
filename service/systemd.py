"""systemd integration without a dependency: sd_notify, the watchdog, journald priorities.

Every function is a no-op outside systemd (no ``$NOTIFY_SOCKET``, no
``$WATCHDOG_USEC``, no ``$JOURNAL_STREAM``), so services call them unconditionally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Mapping
from typing import TextIO

# journald priorities (syslog levels) for Python's logging levels.
_PRIORITIES = ((logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
_DEBUG_PRIORITY = 7


def notify(*states: str, env: Mapping[str, str] | None = None) -> bool:
    """Send `states` (e.g. ``"READY=1"``) to the service manager; False when there is none.

    One datagram per call, as libsystemd's sd_notify does; a failure to reach
    the manager is reported, never raised, because it must not stop a service.
    """
    address = (os.environ if env is None else env).get("NOTIFY_SOCKET")
    if not address or address[0] not in "/@":
        return False
    if address[0] == "@":
        address = "\0" + address[1:]  # Linux abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            # Never block the event loop on a manager that is not reading: a lost
            # STATUS= line is harmless, a frozen service is not.
            sock.sendto("\n".join(states).encode(), socket.MSG_DONTWAIT, address)
    except OSError:
        return False
    return True


def watchdog_interval(env: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of WatchdogSec=), or None if not asked for."""
    env = os.environ if env is None else env
    watchdog_pid = env.get("WATCHDOG_PID")
    if watchdog_pid and watchdog_pid != str(os.getpid() if pid is None else pid):
        return None  # the watchdog is meant for another process (e.g. our parent)
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2e6 if usec > 0 else None


async def _ping_forever(interval: float, env: Mapping[str, str] | None) -> None:
    while True:
        notify("WATCHDOG=1", env=env)
        await asyncio.sleep(interval)


def start_watchdog(env: Mapping[str, str] | None = None) -> asyncio.Task[None] | None:
    """Ping the watchdog from the running event loop, so a stalled loop gets restarted."""
    interval = watchdog_interval(env)
    if interval is None:
        return None
    return asyncio.get_running_loop().create_task(_ping_forever(interval, env))


async def stop_watchdog(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def journal_priority(levelno: int) -> int:
    for threshold, priority in _PRIORITIES:
        if levelno >= threshold:
            return priority
    return _DEBUG_PRIORITY


class JournalFormatter(logging.Formatter):
    """Prefix every line with ``<N>`` so journald files it under the record's priority.

    Every line, not only the first: journald splits a stream entry per line, and
    a traceback's lines would otherwise be logged as info.
    """

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{journal_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def stream_is_journal(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    """True when `stream` is the journal stream systemd announced in ``$JOURNAL_STREAM``.

    The variable is inherited by children whose stderr may be redirected, so it
    is compared with the stream's own device and inode, as sd_journal_stream_fd(3) advises.
    """
    announced = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    device, _, inode = announced.partition(":")
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return f"{st.st_dev}:{st.st_ino}" == f"{device}:{inode}"


def setup_logging(
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Log to `stream` (stderr): priority-prefixed for journald, timestamped otherwise."""
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    if stream_is_journal(stream, env):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
