"""Sharing records with a practitioner, end to end, through the same blind relay.

One module per concern:

- ``cards``: contact cards (public keys, introduction mailbox) and fingerprints;
- ``contacts``: pinned contacts, refusing any whose keys change until accepted;
- ``pairing``: pinning each other's cards in person with a short code (SPAKE2);
- ``scope``: which records a share covers;
- ``shares``: the shares this identity makes (create, narrow, revoke, expire);
- ``publish``: writing in-scope records into a share's mailbox, from any device;
- ``views``: a share mailbox's contents, merged (the doctor's copy, the patient's
  record of what was published);
- ``invitations``: the sealed invitation left in the doctor's introduction mailbox;
- ``incoming``: the practitioner's side: invitations, shared records, patients;
- ``notes``: notes a practitioner writes back, verified on the patient's devices;
- ``audit``: the hash-chained log of sharing events;
- ``follow``: reading mailboxes whose writers are not all trusted, entry by entry;
- ``vault_ops``: the operations sharing adds to the vault mailbox (device sync);
- ``rounds``: the part of one sync round that moves all of the above.

The wire formats and the reasons behind them are in docs/protocol.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from carnet.daemon.device import Device
    from carnet.protocol.mailbox import MailboxKeys


def owned_mailboxes(device: Device) -> list[MailboxKeys]:
    """The mailboxes sharing created for this identity, for `carnet forget` (daemon/forget.py):
    its introduction mailbox and the data and notes mailboxes of every share it made."""
    # Imported here: submodules import this package first, a top-level import would cycle.
    from carnet.daemon.sharing import cards, shares

    secrets = device.unlock()
    owned = [cards.intro_mailbox(secrets)]
    for share in shares.all_shares(device.store):
        owned += share.secrets(secrets).mailboxes()
    return owned
