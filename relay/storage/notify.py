"""In-process fan-out of "this mailbox's latest cursor is now N" to its subscribers.

A subscriber is a plain callback, so an idle subscription costs one set entry
and no task or future. SQLite publishes after its own commits; PostgreSQL
publishes what its LISTEN connection hears (``postgres_listen``), so every
relay process hears every append, whichever process made it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

# Called with the mailbox's latest cursor, or None once the mailbox is gone.
Listener = Callable[[int | None], None]
Unsubscribe = Callable[[], None]

log = logging.getLogger(__name__)


class CursorHub:
    def __init__(self) -> None:
        self._listeners: dict[bytes, set[Listener]] = {}

    def subscribe(self, mailbox_id: bytes, listener: Listener) -> Unsubscribe:
        listeners = self._listeners.setdefault(mailbox_id, set())
        listeners.add(listener)

        def unsubscribe() -> None:
            listeners.discard(listener)
            if not listeners and self._listeners.get(mailbox_id) is listeners:
                del self._listeners[mailbox_id]

        return unsubscribe

    def publish(self, mailbox_id: bytes, cursor: int | None) -> None:
        for listener in tuple(self._listeners.get(mailbox_id, ())):
            try:
                listener(cursor)
            except Exception:
                # One broken subscriber must not cost the others their notification.
                log.exception("a cursor subscriber failed")

    def mailboxes(self) -> list[bytes]:
        """The mailboxes someone listens to (to re-read them after missing notifications)."""
        return list(self._listeners)

    def close(self) -> None:
        """Tell every subscriber its mailbox is gone (used at shutdown)."""
        for mailbox_id in tuple(self._listeners):
            self.publish(mailbox_id, None)
        self._listeners.clear()

    def __len__(self) -> int:
        return sum(len(listeners) for listeners in self._listeners.values())
