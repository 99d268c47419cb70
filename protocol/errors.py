"""Every error a person can see, in one place.

As in magic-wormhole, an error's docstring is the line the user reads; the
optional detail says which input was wrong. ``str(error)`` is that one line.
Anything that is not a ``CarnetError`` is a bug and keeps its traceback.

    CarnetError
    ├── UsageError                 bad input from the user (exit code 2 in the CLI)
    │   ├── InvalidRecord
    │   ├── InvalidConfig          (exit code 78, EX_CONFIG, in the daemon)
    │   ├── InvalidCard
    │   ├── UnknownContact
    │   └── UnknownShare
    ├── NotInitialised / AlreadyInitialised / UnknownRecord
    ├── NewerVersionWrote          a snapshot would drop what only a newer carnet understands
    ├── KeyFileError
    │   └── WrongPassphrase
    ├── RelayError
    │   ├── RelayUnreachable
    │   └── RelayRefused
    ├── JoinError
    ├── ImportRejected
    ├── DaemonAlreadyRunning
    ├── ContactKeyChanged          a pinned contact's keys differ: refused until accepted
    ├── PairingFailed
    ├── ShareClosed
    ├── AuditChainBroken
    └── AttackDetected             a reader refused what the relay served
        ├── TamperedEntry
        ├── ReplayedEntry
        ├── MissingEntry
        ├── ForkedFeed
        ├── UnsupportedVersion
        └── RefusedEntry           skipped: not from a verified contact (sharing mailboxes)
"""

from __future__ import annotations


class CarnetError(Exception):
    """carnet failed."""

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail
        super().__init__(str(self))

    def __str__(self) -> str:
        head = (self.__doc__ or "").strip().splitlines()[0]
        return f"{head} {self.detail}" if self.detail else head


class UsageError(CarnetError):
    """Invalid input:"""


class InvalidRecord(UsageError):
    """Invalid appointment:"""


class InvalidConfig(UsageError):
    """Invalid configuration:"""


class InvalidCard(UsageError):
    """That is not a valid carnet contact card; copy the whole line `carnet contact` printed:"""


class UnknownContact(UsageError):
    """No contact by that name; `carnet contact list` shows them:"""


class UnknownShare(UsageError):
    """No such share; `carnet shares` lists them:"""


class NotInitialised(CarnetError):
    """This device has no carnet identity yet; run `carnet init --relay URL` first."""


class AlreadyInitialised(CarnetError):
    """This device already has a carnet identity; use another CARNET_HOME for a second one."""


class UnknownRecord(CarnetError):
    """No appointment with that id; `carnet list` shows the ids."""


class NewerVersionWrote(CarnetError):
    """A newer version of carnet wrote to this vault; update carnet on this device to compact it."""


class KeyFileError(CarnetError):
    """The key file cannot be used:"""


class WrongPassphrase(KeyFileError):
    """Wrong passphrase for the key file; try again or use --passphrase-file."""


class RelayError(CarnetError):
    """The relay failed:"""


class RelayUnreachable(RelayError):
    """Cannot reach the relay; check the relay URL and your network, then try again:"""


class RelayRefused(RelayError):
    """The relay refused the request:"""


class JoinError(CarnetError):
    """Cannot join this device:"""


class ImportRejected(CarnetError):
    """Cannot import file:"""


class DaemonAlreadyRunning(CarnetError):
    """carnetd already runs for this device; stop it first, or use another CARNET_HOME:"""


class ContactKeyChanged(CarnetError):
    """REFUSED: a contact's keys changed; compare the new fingerprint with them first:"""


class PairingFailed(CarnetError):
    """Pairing failed and nothing was pinned:"""


class ShareClosed(CarnetError):
    """That share is over (revoked or expired), or does not allow it:"""


class AuditChainBroken(CarnetError):
    """The audit log's hash chain is broken (altered outside carnet):"""


class AttackDetected(CarnetError):
    """The relay served data that failed verification; nothing was applied:"""


class TamperedEntry(AttackDetected):
    """Refused a tampered entry (it fails authentication); nothing was applied:"""


class ReplayedEntry(AttackDetected):
    """Refused a replayed entry (already seen); nothing was applied:"""


class MissingEntry(AttackDetected):
    """Refused a feed with a missing entry (withheld or deleted); nothing was applied:"""


class ForkedFeed(AttackDetected):
    """Refused a forked feed (an entry does not follow the one before); nothing was applied:"""


class UnsupportedVersion(AttackDetected):
    """Refused an entry in an unknown envelope version; upgrade carnet:"""


class RefusedEntry(AttackDetected):
    """Refused an entry that does not come from a verified contact; it was skipped:"""
