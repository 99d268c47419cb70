"""Pinned contacts: a local name (alias) bound to the keys of one card, trust on first use.

Once pinned, a contact's keys never change silently. A card whose keys differ
from the pinned ones is refused loudly (``ContactKeyChanged``) and logged as a
key change, whether it comes under the same alias or under another alias but
with the name of a pinned contact (a look-alike), until the person accepts the
new keys explicitly with ``accept``. Pins are synced to the identity's other
devices as vault operations (``{"t": "contact", ...}``), newest stamp wins.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from carnet.daemon.records import now_iso
from carnet.daemon.sharing import audit
from carnet.daemon.sharing.cards import Card
from carnet.daemon.store import Store
from carnet.protocol.errors import (
    ContactKeyChanged,
    InvalidCard,
    UnknownContact,
    UsageError,
)

MAX_ALIAS = 64


@dataclass(frozen=True)
class Contact:
    alias: str
    card: Card
    pinned: str

    def to_dict(self) -> dict[str, str]:
        return {
            "alias": self.alias,
            "name": self.card.name,
            "role": self.card.role,
            "fingerprint": self.card.fingerprint,
            "relay": self.card.relay,
            "pinned": self.pinned,
        }


def check_alias(alias: str) -> str:
    alias = alias.strip()
    if not alias or len(alias) > MAX_ALIAS:
        raise UsageError(f"an alias is 1 to {MAX_ALIAS} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in alias):
        raise UsageError("an alias must not contain control characters")
    return alias


def _contact(row: tuple[str, str, str] | None) -> Contact | None:
    return Contact(row[0], Card.decode(row[1]), row[2]) if row else None


def find(store: Store, alias: str) -> Contact | None:
    return _contact(
        store.conn.execute(
            "SELECT alias, card, pinned FROM contacts WHERE alias = ?", (alias,)
        ).fetchone()
    )


def get(store: Store, alias: str) -> Contact:
    contact = find(store, alias)
    if contact is None:
        raise UnknownContact(repr(alias))
    return contact


def by_identity(store: Store, identity: bytes) -> Contact | None:
    return _contact(
        store.conn.execute(
            "SELECT alias, card, pinned FROM contacts WHERE identity = ?", (identity.hex(),)
        ).fetchone()
    )


def all_contacts(store: Store) -> list[Contact]:
    cur = store.conn.execute("SELECT alias, card, pinned FROM contacts ORDER BY alias")
    return [Contact(alias, Card.decode(card), pinned) for alias, card, pinned in cur]


def namesake(store: Store, name: str, identity: bytes) -> Contact | None:
    """A pinned contact with the same (case-insensitive) name but another identity key."""
    wanted = name.strip().casefold()
    if not wanted:
        return None
    for contact in all_contacts(store):
        if contact.card.name.strip().casefold() == wanted and contact.card.identity != identity:
            return contact
    return None


def log_key_change(store: Store, pinned: Contact, offered: str, where: str) -> None:
    """Log that `where` offered other keys (`offered`) for `pinned`; nothing is accepted."""
    audit.record(
        store,
        audit.KEY_CHANGE,
        f"refused {where} for {pinned.alias}: pinned {pinned.card.fingerprint}, offered {offered}",
    )


def refuse_key_change(store: Store, pinned: Contact, offered: str, where: str) -> None:
    """Log a key change for `pinned` and raise: nothing is pinned or accepted."""
    log_key_change(store, pinned, offered, where)
    raise ContactKeyChanged(
        f"{where} for {pinned.alias!r} has fingerprint {offered}, pinned is "
        f"{pinned.card.fingerprint}; if it is really theirs, run "
        f"`carnet contact accept {pinned.alias} --card CARD`"
    )


def check_new(store: Store, card: Card, alias: str) -> Contact | None:
    """The existing pin if `card` is already pinned as `alias`, None if it may be; else raise."""
    current = find(store, alias)
    if current is not None:
        if current.card.same_keys(card):
            return current
        refuse_key_change(store, current, card.fingerprint, "a new card")
    twin = by_identity(store, card.identity)
    if twin is not None:
        raise UsageError(f"this card is already pinned as {twin.alias!r}")
    look_alike = namesake(store, card.name, card.identity)
    if look_alike is not None:
        refuse_key_change(store, look_alike, card.fingerprint, f"a card named {card.name!r}")
    return None


def pin(store: Store, card: Card, alias: str) -> Contact:
    """Pin `card` as `alias` (refusing key changes) and sync the pin to our other devices."""
    alias = check_alias(alias)
    existing = check_new(store, card, alias)
    if existing is not None:
        return existing
    return _save(store, alias, card, audit.CONTACT_PINNED)


def accept(store: Store, alias: str, card: Card) -> Contact:
    """Replace the keys pinned for `alias` with `card`'s: the person checked them."""
    current = get(store, alias)
    twin = by_identity(store, card.identity)
    if twin is not None and twin.alias != alias:
        raise UsageError(f"this card is already pinned as {twin.alias!r}")
    if current.card.same_keys(card):
        return current
    return _save(
        store,
        alias,
        card,
        audit.KEY_CHANGE,
        f"accepted for {alias}: was {current.card.fingerprint}, now {card.fingerprint}",
    )


def _save(store: Store, alias: str, card: Card, kind: str, detail: str = "") -> Contact:
    pinned = now_iso()
    with store.transaction():
        op = {"t": "contact", "alias": alias, "card": card.encode(), "pinned": pinned}
        op["s"] = store.stamp()
        _write(store, op)
        store.enqueue(op)
        audit.record(
            store, kind, detail or f"{alias} ({card.role}), fingerprint {card.fingerprint}"
        )
    return Contact(alias, card, pinned)


def _write(store: Store, op: dict[str, Any]) -> None:
    # REPLACE also drops an older alias of the same identity (unique index).
    store.conn.execute(
        "INSERT OR REPLACE INTO contacts (alias, identity, card, pinned, stamp) "
        "VALUES (?, ?, ?, ?, ?)",
        (op["alias"], Card.decode(op["card"]).identity.hex(), op["card"], op["pinned"], op["s"]),
    )


def state_ops(store: Store) -> Iterator[dict[str, Any]]:
    """Every pin, as the operations that make it (for a snapshot)."""
    cur = store.conn.execute("SELECT alias, card, pinned, stamp FROM contacts ORDER BY alias")
    for alias, card, pinned, stamp in cur:
        yield {"t": "contact", "alias": alias, "card": card, "pinned": pinned, "s": stamp}


def apply_op(store: Store, op: dict[str, Any]) -> str:
    """A pin made on another device of this identity (inside a transaction)."""
    try:
        Card.decode(str(op["card"]))  # a pin is only ever of a valid, signed card
        alias, stamp = check_alias(str(op["alias"])), str(op["s"])
    except (KeyError, InvalidCard, UsageError):
        return ""  # malformed: skipped, like an unknown kind
    row = store.conn.execute("SELECT stamp FROM contacts WHERE alias = ?", (alias,)).fetchone()
    if row is not None and row[0] >= stamp:
        return stamp
    _write(store, {**op, "alias": alias, "pinned": str(op.get("pinned", ""))})
    return stamp
