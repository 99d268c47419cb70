import os

import pytest
from nacl.signing import SigningKey

from carnet.protocol.envelope import Writer, certify_device
from carnet.protocol.mailbox import MailboxKeys


@pytest.fixture
def identity() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def writer(identity: SigningKey) -> Writer:
    device = SigningKey.generate()
    return Writer(device, certify_device(identity, bytes(device.verify_key)))


@pytest.fixture
def keys() -> MailboxKeys:
    return MailboxKeys.from_secret(os.urandom(32))
