"""Erasure: delete from the relay every mailbox this identity owns (`carnet forget`).

The relay erases a mailbox and all its entries when asked with the mailbox's
write capability, which only the owner's devices hold. What the identity owns
is its vault mailbox (device sync) plus whatever the sharing module reports
(share mailboxes, its introduction mailbox). Local stores are left alone: they are the
person's own copies, on their own devices.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from carnet.daemon.device import Device
from carnet.daemon.sharing import owned_mailboxes as sharing_mailboxes
from carnet.daemon.sync.relay_client import MailboxGone, RelayClient
from carnet.protocol.mailbox import MailboxKeys


@dataclass(frozen=True)
class ForgetReport:
    relay: str
    erased: int  # mailboxes the relay erased now
    already_gone: int  # never created, expired or erased before
    shared: int  # how many of the mailboxes were sharing's

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def owned_mailboxes(device: Device) -> list[MailboxKeys]:
    """The vault mailbox first, then sharing's, each once."""
    vault = device.unlock().vault_mailbox
    owned = {vault.mailbox_id: vault}
    for keys in sharing_mailboxes(device):
        owned.setdefault(keys.mailbox_id, keys)
    return list(owned.values())


async def forget(relay: RelayClient, mailboxes: list[MailboxKeys]) -> ForgetReport:
    """Delete `mailboxes` (from ``owned_mailboxes``) on the relay; stops at the first failure,
    so running it again finishes the job (an erased mailbox then counts as already gone)."""
    erased = gone = 0
    for keys in mailboxes:
        try:
            await relay.delete(keys)
            erased += 1
        except MailboxGone:
            gone += 1
    return ForgetReport(relay.url, erased, gone, len(mailboxes) - 1)
