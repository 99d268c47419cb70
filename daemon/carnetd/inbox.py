"""The inbox: a folder where the patient, or another program, drops appointment files.

Each file is imported whole or not at all (``importing``), then moved to
``imported/`` or to ``rejected/`` beside a ``NAME.error.txt`` holding the
one-line reason. Files already there at startup are processed too.

A file still being written must not be read early. Three guards, cheapest first:

1. names that mark work in progress are never touched: dotfiles, ``*.part``,
   ``*.tmp``, ``*.crdownload``, ``*~`` (writers that write then rename are safe);
2. a file is read only once its size, mtime and inode have stayed unchanged for
   ``inbox_settle_ms`` and no process holds it open for writing (a read lease,
   which Linux grants only then, tells);
3. a file that fails to parse while it is young (changed within the last
   ``REJECT_GRACE`` multiple of the settle time) is not rejected yet but tried
   again: a writer pausing mid-copy gets that long to carry on.

A crash between the import's commit and the move leaves the file in the inbox;
importing it again at the next start adds nothing (records are deduplicated by
their source), so nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from watchfiles import Change, awatch

from carnet.daemon import importing
from carnet.daemon.carnetd import memory
from carnet.daemon.carnetd.bugs import log_bug
from carnet.daemon.store import ImportSummary, Store
from carnet.protocol.errors import CarnetError, ImportRejected

log = logging.getLogger("carnetd.inbox")

IMPORTED = "imported"
REJECTED = "rejected"
ERROR_SUFFIX = ".error.txt"
TEMP_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", "~")
# A young file that fails to parse gets this many settle periods (at least
# MIN_GRACE seconds) to change before it is rejected.
REJECT_GRACE = 5
MIN_GRACE = 2.0
# After a database error (e.g. locked for long by another process), try again later.
STORE_RETRY = 5.0
# watchfiles' thread checks for its stop event this often (milliseconds).
WATCH_STEP_MS = 250
WATCH_RESTART = 5.0

Kind = Literal["imported", "rejected", "not-ready", "gone"]


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    retry_in: float = 0.0
    summary: ImportSummary | None = None
    moved_to: Path | None = None


def is_candidate(name: str) -> bool:
    """Whether a file name in the inbox is one to import (not work in progress)."""
    if not name or name.startswith(".") or name.startswith("#"):
        return False
    return not name.lower().endswith(TEMP_SUFFIXES)


def _signature(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def writer_active(path: Path) -> bool:
    """True if some process has `path` open for writing (e.g. a copy in progress).

    Linux grants a read lease only when nobody has the file open for writing.
    Where leases are unavailable (another owner, a network file system) this
    says False, and the settle time alone guards.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        return exc.errno == errno.EAGAIN
    else:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


def free_name(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/stem-2.ext`, `-3`... if taken: nothing is overwritten."""
    candidate = folder / name
    stem, suffix = os.path.splitext(name)
    number = 1
    while candidate.exists() or candidate.is_symlink():
        number += 1
        candidate = folder / f"{stem}-{number}{suffix}"
    return candidate


def reject(path: Path, reason: str) -> Path:
    """Move `path` to rejected/ with its reason beside it; returns where it went."""
    target = free_name(path.parent / REJECTED, path.name)
    # The reason first: a crash in between leaves the file in the inbox to try
    # again, and its retry reuses the name and overwrites that reason file.
    note = target.with_name(target.name + ERROR_SUFFIX)
    tmp = note.with_name(note.name + ".tmp")
    tmp.write_text(" ".join(reason.split()) + "\n")
    os.replace(tmp, note)
    os.rename(path, target)
    return target


def process_file(store: Store, path: Path, grace: float) -> Outcome:
    """Import one settled file, or say when to look at it again (runs in a worker thread)."""
    try:
        before = os.stat(path)
    except FileNotFoundError:
        return Outcome("gone")
    if not stat.S_ISREG(before.st_mode):
        return Outcome("gone")
    if writer_active(path):
        return Outcome("not-ready", retry_in=grace / REJECT_GRACE)

    def changed() -> bool:
        try:
            return _signature(os.stat(path)) != _signature(before)
        except FileNotFoundError:
            return True

    try:
        records = importing.parse(path)
    except CarnetError as exc:
        if changed():
            return Outcome("not-ready", retry_in=grace / REJECT_GRACE)
        age = time.time() - before.st_mtime
        if age < grace:
            return Outcome("not-ready", retry_in=grace - age)
        return Outcome("rejected", moved_to=reject(path, str(exc)))
    except Exception as exc:  # a parser bug must cost one file, never the daemon
        log_bug(log, "reading a file", exc)
        reason = f"carnet failed on this file ({type(exc).__name__}); please report it"
        return Outcome("rejected", moved_to=reject(path, _rejection(path, reason)))
    if changed():
        return Outcome("not-ready", retry_in=grace / REJECT_GRACE)
    try:
        summary = importing.store_records(store, records)
    except CarnetError as exc:  # e.g. a record the store's own checks refuse
        return Outcome("rejected", moved_to=reject(path, _rejection(path, str(exc))))
    except sqlite3.Error as exc:
        log.warning("store busy or failing (%s); will retry the file", type(exc).__name__)
        return Outcome("not-ready", retry_in=STORE_RETRY)
    target = free_name(path.parent / IMPORTED, path.name)
    os.rename(path, target)
    return Outcome("imported", summary=summary, moved_to=target)


def _rejection(path: Path, reason: str) -> str:
    """A reason worded like the formats module's own rejections."""
    return str(ImportRejected(f"{path.name}: {reason}"))


class Inbox:
    def __init__(
        self,
        folder: Path,
        store: Store,
        settle: float,
        on_imported: Callable[[], None],
    ) -> None:
        self.folder = folder
        self.store = store  # its own connection: imports run in a worker thread
        self.settle = settle
        self.grace = max(MIN_GRACE, REJECT_GRACE * settle)
        self.on_imported = on_imported
        self._due: dict[str, float] = {}  # name -> loop time it may be tried
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Finish the file in hand, then return from `run`."""
        self._stop.set()
        self._wake.set()

    def prepare(self) -> None:
        """Create the inbox and its subfolders (before READY=1, so they exist once ready)."""
        for sub in (self.folder, self.folder / IMPORTED, self.folder / REJECTED):
            sub.mkdir(parents=True, exist_ok=True, mode=0o700)

    async def run(self) -> None:
        self.prepare()
        watcher = asyncio.create_task(self._watch(), name="inbox-watch")
        try:
            self._scan()
            await self._work()
        finally:
            self._stop.set()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    def _scan(self) -> None:
        """Queue what is already in the folder (dropped while the daemon was down)."""
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if entry.is_file() and is_candidate(entry.name):
                    self._saw(entry.name)

    def _saw(self, name: str) -> None:
        self._due[name] = asyncio.get_running_loop().time() + self.settle
        self._wake.set()

    async def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                async for changes in awatch(
                    self.folder,
                    watch_filter=lambda _change, path: is_candidate(os.path.basename(path)),
                    recursive=False,
                    stop_event=self._stop,
                    step=WATCH_STEP_MS,
                ):
                    for change, path in changes:
                        name = os.path.basename(path)
                        if change == Change.deleted:
                            self._due.pop(name, None)
                        else:
                            self._saw(name)
            except (OSError, RuntimeError) as exc:
                log.warning("inbox watch failed (%s); watching again shortly", type(exc).__name__)
                await asyncio.sleep(WATCH_RESTART)
                with contextlib.suppress(OSError):
                    self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                    self._scan()

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            self._wake.clear()
            if not self._due:
                await self._wake.wait()
                continue
            name, at = min(self._due.items(), key=lambda item: item[1])
            if at > loop.time():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), at - loop.time())
                continue
            del self._due[name]
            try:
                outcome = await asyncio.to_thread(
                    process_file, self.store, self.folder / name, self.grace
                )
            except OSError as exc:  # e.g. imported/ not writable: leave the file for later
                log.warning("could not move a file (%s); it stays in the inbox", exc.strerror)
                continue
            self._report(name, outcome)

    def _report(self, name: str, outcome: Outcome) -> None:
        if outcome.kind == "not-ready":
            # Unless a newer event already rescheduled it.
            self._due.setdefault(name, asyncio.get_running_loop().time() + outcome.retry_in)
        elif outcome.kind == "rejected":
            log.warning("rejected a file; its reason is beside it in %s/", REJECTED)
        elif outcome.kind == "imported" and outcome.summary is not None:
            s = outcome.summary
            log.info(
                "imported a file: %d added, %d updated, %d unchanged",
                s.added,
                s.updated,
                s.unchanged,
            )
            if s.added or s.updated:
                self.on_imported()
            memory.after_bulk(s.added + s.updated + s.unchanged)
