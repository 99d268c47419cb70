"""Sharing's part of one sync round, run by ``daemon/sync/engine.py`` after the vault.

For each share this identity made: erase it on the relay once revoked or
expired (logging the expiry once), otherwise merge what sibling devices
published, publish what is missing, accept the practitioner's notes, and
deliver the invitation if this device still owes it. A practitioner identity
also reads its introduction mailbox and each share made to it.

An idle round costs one read per mailbox followed (a share's data and notes
mailboxes; for a practitioner also the introduction mailbox and each share),
whatever the number of records. Refused entries do not stop the round: they
are collected, and the engine fails the round with them once all is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from carnet.daemon.device import Device
from carnet.daemon.keys import Secrets
from carnet.daemon.sharing import (
    audit,
    cards,
    incoming,
    invitations,
    notes,
    publish,
    shares,
    views,
)
from carnet.daemon.sharing.follow import certified_by
from carnet.daemon.sharing.relays import Relays, relay_pool
from carnet.daemon.sharing.shares import ACTIVE, ENDED, EXPIRED, Share
from carnet.daemon.sync.relay_client import MailboxGone, RelayClient
from carnet.protocol.mailbox import MailboxKeys


@dataclass
class SharingReport:
    shared_entries_pushed: int = 0
    shared_entries_pulled: int = 0
    invitations_received: int = 0
    notes_received: int = 0
    refused: list[str] = field(default_factory=list)


async def _end(device: Device, relays: Relays, secrets: Secrets, share: Share) -> None:
    store = device.store
    if share.state() == EXPIRED and not share.progress.ended_logged:
        audit.record_derived(
            store, audit.SHARE_EXPIRED, share.id, f"{share.id[:8]} with {share.alias}"
        )
        shares.set_progress(store, share, ended_logged=1)
    if not share.progress.erased:
        await shares.erase(store, relays.get(share.relay), secrets, share)


async def _tend(
    report: SharingReport, device: Device, relays: Relays, secrets: Secrets, share: Share
) -> None:
    store, writer = device.store, secrets.writer
    drawn = share.secrets(secrets)
    keys, relay = drawn.data_keys, relays.get(share.relay)
    siblings = certified_by(
        secrets.identity.verify_key, "an entry in a share's mailbox not written by your devices"
    )
    try:
        pulled, refused = await views.read(
            store, relay, share.id, keys, keys.writer_tag(writer.public_key), siblings
        )
        report.shared_entries_pulled += pulled
        report.refused += refused
        report.shared_entries_pushed += await publish.publish(store, relay, share, keys, writer)
        if drawn.notes_keys is not None:
            received, refused = await notes.read(store, relay, share, drawn.notes_keys)
            report.notes_received += received
            report.refused += refused
    except MailboxGone:
        # Revoked by another device (not heard of yet) or lost: never recreate it.
        shares.set_progress(store, share, gone=1)
        shares.forget_mailboxes(store, drawn.mailboxes())
        store.add_alert(f"share {share.id[:8]} with {share.alias}: its mailbox is gone")
        return
    if share.progress.invite:
        await invitations.deliver(store, relays, secrets, device.config.name, share)


async def _receive(report: SharingReport, device: Device, relays: Relays, secrets: Secrets) -> None:
    store = device.store
    received, refused = await incoming.receive(store, relays.home, secrets, device.config)
    report.invitations_received += received
    report.refused += refused
    for share in incoming.all_incoming(store):
        if not share.gone:
            pulled, refused = await incoming.read_share(store, relays, secrets, share)
            report.shared_entries_pulled += pulled
            report.refused += refused


async def sync_sharing(device: Device, relay: RelayClient) -> SharingReport:
    secrets = device.unlock()
    report = SharingReport()
    async with relay_pool(relay) as relays:
        for share in shares.all_shares(device.store):
            state = share.state()
            if state == ACTIVE:
                await _tend(report, device, relays, secrets, share)
            elif state != ENDED:
                await _end(device, relays, secrets, share)
        if device.config.role == "practitioner":
            await _receive(report, device, relays, secrets)
    return report


def watched_mailboxes(device: Device) -> list[MailboxKeys]:
    """Mailboxes on the home relay whose news should wake the daemon at once.

    Notes from practitioners on the patient's side; the introduction mailbox and
    every live incoming share on a practitioner's. (Changes by the patient's own
    devices already arrive through the vault mailbox.) Shares on another relay
    are read in every round, without a subscription.
    """
    secrets = device.unlock()
    home = device.config.relay
    watched: list[MailboxKeys] = []
    for share in shares.all_shares(device.store):
        notes_keys = share.secrets(secrets).notes_keys
        if share.state() == ACTIVE and notes_keys is not None and share.relay in ("", home):
            watched.append(notes_keys)
    if device.config.role == "practitioner":
        watched.append(cards.intro_mailbox(secrets))
        for incoming_share in incoming.all_incoming(device.store):
            invitation = incoming_share.invitation(secrets)
            if incoming_share.state() == "active" and invitation.relay in ("", home):
                watched.append(invitation.data)
    return watched
