import dataclasses

import pytest
from nacl.signing import SigningKey

from carnet.protocol.envelope import (
    GENESIS,
    Entry,
    Writer,
    certify_device,
    check_certificate,
    open_entry,
    seal,
)
from carnet.protocol.errors import TamperedEntry, UnsupportedVersion
from carnet.protocol.mailbox import MailboxKeys
from carnet.protocol.wire import MAX_ENTRY_BYTES


def trust(identity: SigningKey):
    return lambda dev, cert: check_certificate(identity.verify_key, dev, cert)


def test_seal_open_roundtrip(keys: MailboxKeys, writer: Writer, identity: SigningKey) -> None:
    body = {"ops": [{"t": "rec", "id": "r1", "f": {"notes": ["hé", "s"]}}]}
    entry = seal(keys, writer, 1, GENESIS, body)
    opened = open_entry(keys, entry, trust(identity))
    assert opened.body == body
    assert opened.seq == 1 and opened.prev == GENESIS and opened.device == writer.public_key
    assert opened.hash == entry.hash
    assert entry.writer == keys.writer_tag(writer.public_key)
    assert entry.data[0] == 1


def test_ciphertext_hides_content_and_size(keys: MailboxKeys, writer: Writer) -> None:
    small = seal(keys, writer, 1, GENESIS, {"ops": ["x"]})
    larger = seal(keys, writer, 1, GENESIS, {"ops": ["x" * 600]})
    assert len(small.data) == len(larger.data)
    assert b"x" * 20 not in larger.data
    assert writer.public_key not in small.data


@pytest.mark.parametrize("position", [0, 1, 30, -1])
def test_any_flipped_byte_is_refused(
    keys: MailboxKeys, writer: Writer, identity: SigningKey, position: int
) -> None:
    entry = seal(keys, writer, 1, GENESIS, {"ops": []})
    data = bytearray(entry.data)
    data[position] ^= 0x01
    with pytest.raises((TamperedEntry, UnsupportedVersion)):
        open_entry(keys, dataclasses.replace(entry, data=bytes(data)), trust(identity))


def test_moved_entry_is_refused(keys: MailboxKeys, writer: Writer, identity: SigningKey) -> None:
    entry = seal(keys, writer, 2, GENESIS, {"ops": []})
    with pytest.raises(TamperedEntry):
        open_entry(keys, dataclasses.replace(entry, seq=3), trust(identity))
    with pytest.raises(TamperedEntry):
        open_entry(keys, dataclasses.replace(entry, writer=bytes(16)), trust(identity))
    other = MailboxKeys.from_secret(bytes(32))
    with pytest.raises(TamperedEntry):
        open_entry(other, entry, trust(identity))


def test_uncertified_device_is_refused(keys: MailboxKeys, identity: SigningKey) -> None:
    device = SigningKey.generate()
    impostor = Writer(device, certify_device(SigningKey.generate(), bytes(device.verify_key)))
    entry = seal(keys, impostor, 1, GENESIS, {"ops": []})
    with pytest.raises(TamperedEntry, match="trusted device"):
        open_entry(keys, entry, trust(identity))


@pytest.mark.parametrize("size", [0, 63, 65])
def test_certificate_of_the_wrong_length_is_refused_not_raised(
    keys: MailboxKeys, writer: Writer, identity: SigningKey, size: int
) -> None:
    # A card holder writes intro entries: a malformed cert must be a refusal, not a crash.
    assert not check_certificate(identity.verify_key, writer.public_key, b"\x01" * size)
    odd = Writer(writer.signing_key, b"\x01" * size)
    entry = seal(keys, odd, 1, GENESIS, {"ops": []})
    with pytest.raises(TamperedEntry, match="trusted device"):
        open_entry(keys, entry, trust(identity))


def test_unknown_version_is_refused(keys: MailboxKeys, writer: Writer, identity: SigningKey):
    entry = seal(keys, writer, 1, GENESIS, {})
    future = Entry(entry.writer, 1, b"\x02" + entry.data[1:])
    with pytest.raises(UnsupportedVersion):
        open_entry(keys, future, trust(identity))


def test_no_entry_larger_than_the_protocol_allows_is_sealed(
    keys: MailboxKeys, writer: Writer
) -> None:
    largest = seal(keys, writer, 1, GENESIS, {"ops": ["x" * 60_000]})
    assert len(largest.data) <= MAX_ENTRY_BYTES
    with pytest.raises(ValueError, match="exceeds the padded maximum"):
        seal(keys, writer, 1, GENESIS, {"ops": ["x" * 66_000]})
