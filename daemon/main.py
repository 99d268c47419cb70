"""``carnetd``: the device's background service, in the foreground (systemd runs it).

Exit codes: 0 after SIGTERM/SIGINT, 78 (EX_CONFIG) for a bad configuration,
1 for any other problem a person must fix (no identity yet, a sealed key file
without its passphrase, another carnetd on this device), with one line on
stderr saying which.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from carnet.daemon import passphrase
from carnet.daemon.carnetd.bugs import log_bug
from carnet.daemon.carnetd.pidfile import PidFile
from carnet.daemon.carnetd.supervisor import Supervisor
from carnet.daemon.device import Device
from carnet.daemon.paths import Paths
from carnet.protocol.errors import CarnetError, InvalidConfig
from carnet.service.systemd import setup_logging

EX_CONFIG = 78  # sysexits.h; the unit's RestartPreventExitStatus= stops restart loops on it
# Flags that set a configuration value (same names as in config.toml).
SETTING_FLAGS = (
    "relay",
    "inbox",
    "reminder_command",
    "reminder_leads",
    "push_debounce_ms",
    "inbox_settle_ms",
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="carnetd",
        description="carnet's background service: live sync, inbox import, reminders.",
    )
    parser.add_argument("--home", help="Folder holding this device's state (env: CARNET_HOME).")
    parser.add_argument("--relay", help="Relay URL (overrides the configuration).")
    parser.add_argument("--inbox", help="Folder to import dropped files from.")
    parser.add_argument(
        "--reminder-command", help="Command run per reminder, e.g. 'notify-send carnet {summary}'."
    )
    parser.add_argument(
        "--reminder-lead",
        action="append",
        dest="reminder_leads",
        help="Remind this long before an appointment (repeatable), e.g. 1d, 2h, 30m.",
    )
    parser.add_argument("--push-debounce-ms", type=int, help="Coalesce local changes this long.")
    parser.add_argument("--inbox-settle-ms", type=int, help="Wait for dropped files to settle.")
    parser.add_argument("--passphrase-file", type=Path, help="The key file's passphrase.")
    parser.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error")
    )
    return parser.parse_args(argv)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags; they outrank the file and the environment."""
    given = {name: getattr(args, name) for name in SETTING_FLAGS}
    return {name: value for name, value in given.items() if value is not None}


def run(args: argparse.Namespace) -> int:
    paths = Paths.resolve(args.home)
    flags = overrides(args)
    device = Device.open(paths, **flags)
    lock = PidFile(paths.daemon_pid)
    lock.acquire()
    try:
        device.unlock(passphrase.required(args.passphrase_file) if device.sealed else None)
        return asyncio.run(Supervisor(device, flags).run())
    finally:
        device.close()
        lock.release()


def main(argv: Sequence[str] | None = None) -> NoReturn:
    args = parse_args(argv)
    setup_logging(args.log_level.upper())
    # It logs every batch of file events; the inbox logs what matters about them.
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    # Warnings quote their input (a file's time zones, values) and the log never
    # carries record contents; what matters reaches the log as our own lines.
    warnings.simplefilter("ignore")
    # A read lease (the inbox's "is a copy still in progress?" probe) is broken by
    # SIGIO, whose default action would kill the daemon.
    signal.signal(signal.SIGIO, signal.SIG_IGN)
    try:
        code = run(args)
    except InvalidConfig as exc:
        print(f"carnetd: {exc}", file=sys.stderr)
        sys.exit(EX_CONFIG)
    except CarnetError as exc:
        print(f"carnetd: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # before the loop's own SIGINT handler was in place
        code = 130
    except Exception as exc:  # a bug: frames for the journal, never the message
        log_bug(logging.getLogger("carnetd"), "carnetd", exc)
        code = 1
    logging.shutdown()
    sys.exit(code)


if __name__ == "__main__":
    main()
