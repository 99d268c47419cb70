"""The operations sharing adds to the vault mailbox, and how a device applies them.

New operation kinds (older versions skip kinds they do not know):

- ``contact``: a pinned contact (alias, signed card), newest stamp wins;
- ``share``: a share this identity made, narrowed or revoked (keys sealed);
- ``incoming``: a share this practitioner identity accepted (keys sealed);
- ``audit``: an event of the audit log, appended once by event id.

There is deliberately no ``note`` kind: notes are accepted only from the share's
notes mailbox, where their author is verified; one in the vault is ignored.
The core ``device`` operation also logs "device added", once per device.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any

from carnet.daemon.sharing import audit, contacts, incoming, shares
from carnet.daemon.store import Store
from carnet.daemon.sync.pull import Apply
from carnet.protocol.envelope import OpenedEntry


def _audit(store: Store, op: dict[str, Any]) -> str:
    audit.apply_op(store, op)
    return ""


HANDLERS: dict[str, Callable[[Store, dict[str, Any]], str]] = {
    "contact": contacts.apply_op,
    "share": shares.apply_op,
    "incoming": incoming.apply_op,
    "audit": _audit,
}


def log_device_added(store: Store, device: str, name: str, added: str | None = None) -> None:
    """Log a device of this identity, once, at the time it was added."""
    audit.record_derived(
        store, audit.DEVICE_ADDED, device, f"{name or 'unnamed'} ({device[:16]})", added
    )


def applier(store: Store) -> Apply:
    """The vault pull's applier: core operations to the store, sharing ones here."""

    def apply(entry: OpenedEntry) -> str:
        newest = ""
        for op in entry.body.get("ops", []):
            if not isinstance(op, dict):
                continue
            handler = HANDLERS.get(str(op.get("t")))
            newest = max(newest, handler(store, op) if handler else store.apply_remote(op))
            if op.get("t") == "device":
                log_device_added(
                    store, str(op.get("dev", "")), str(op.get("name", "")), op.get("added")
                )
        return newest

    return apply


def state_ops(store: Store) -> list[str]:
    """The whole state the vault replicates, as encoded operations (for a snapshot):
    records and devices, then pins, shares made, shares accepted and the audit log."""
    exports: list[Iterator[dict[str, Any]]] = [
        store.state_ops(),
        contacts.state_ops(store),
        shares.state_ops(store),
        incoming.state_ops(store),
        audit.state_ops(store),
    ]
    return [json.dumps(op, separators=(",", ":"), ensure_ascii=False) for op in chain(*exports)]
