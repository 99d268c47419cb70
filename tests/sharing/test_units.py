"""Cards, codes and scopes, without a relay."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from nacl.public import PrivateKey, SealedBox

from carnet.daemon.config import Config
from carnet.daemon.keys import Secrets
from carnet.daemon.sharing import invitations, pairing, shares
from carnet.daemon.sharing.cards import Card, fingerprint, own_card
from carnet.daemon.sharing.scope import Scope
from carnet.daemon.sharing.wordlist import FIRST, SECOND
from carnet.daemon.store import Store
from carnet.protocol.errors import InvalidCard, UsageError
from carnet.protocol.mailbox import MailboxKeys


def test_card_round_trips_and_keeps_the_intro_read_seed_private() -> None:
    secrets = Secrets.generate()
    config = Config(relay="https://relay.example", name="Dr Jeanne Martin", role="practitioner")
    card = own_card(secrets, config)
    text = card.encode()
    assert text.startswith("carnet1:") and " " not in text and len(text) < 500
    decoded = Card.decode(text)
    assert decoded == card and decoded.intro.read_seed is None
    assert decoded.name == "Dr Jeanne Martin" and decoded.role == "practitioner"
    assert re.fullmatch(r"(\d{5} ){5}\d{5}", card.fingerprint)
    assert card.fingerprint == fingerprint(card.identity, card.box)
    assert fingerprint(card.identity, bytes(32)) != card.fingerprint


@pytest.mark.parametrize("cut", [1, 10, 100])
def test_altered_or_cut_cards_are_invalid(cut: int) -> None:
    text = own_card(Secrets.generate(), Config(relay="http://r", name="P")).encode()
    with pytest.raises(InvalidCard):
        Card.decode(text[:-cut])
    flipped = text[:cut] + ("A" if text[cut] != "A" else "B") + text[cut + 1 :]
    with pytest.raises(InvalidCard):
        Card.decode(flipped)


def test_codes_have_a_nameplate_and_two_words_from_distinct_lists() -> None:
    assert len(set(FIRST)) == len(set(SECOND)) == 256 and not set(FIRST) & set(SECOND)
    code = pairing.Code.draw()
    assert pairing.Code.parse(str(code).upper()) == code
    assert 1 <= code.nameplate <= pairing.NAMEPLATES
    for bad in ("7-ocean", "0-acorn-acre", "7-acre-acorn", "x-acorn-acre"):
        with pytest.raises(UsageError):
            pairing.Code.parse(bad)
    # The mailbox depends on the nameplate only, never on the secret words.
    other = pairing.Code(code.nameplate, FIRST[0], SECOND[0])
    assert other.mailbox == code.mailbox


def test_scope_matching_and_narrowing() -> None:
    record = {"id": "r1", "practitioner": "Dr A", "specialty": "Cardiology", "start": "2024-03-02"}
    scope = Scope.build(False, specialties=["cardiology"], since="2024-01-01")
    assert scope.matches(record)
    assert not scope.matches({**record, "start": "2023-12-31T23:00:00+01:00"})
    assert not Scope.build(False, practitioners=["Dr B"]).matches(record)
    narrower = scope.narrowed(Scope.build(False, until="2024-02-01"))
    assert narrower.describe() == "specialty=cardiology; since 2024-01-01; until 2024-02-01"
    assert not narrower.matches(record)
    assert Scope.build(True).is_everything and Scope.build(True).matches(record)
    with pytest.raises(UsageError):
        Scope.build(False)
    with pytest.raises(UsageError):
        scope.narrowed(Scope.build(False, specialties=["dermatology"]))


def test_a_revocation_sticks_even_if_older_than_a_narrowing(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store.sqlite3")
    base = {
        "t": "share",
        "id": "s1",
        "to": "doc",
        "ident": "00" * 32,
        "name": "Dr",
        "created": "2024-01-01T00:00:00+00:00",
        "expires": 2e9,
        "notes": False,
        "keys": "",
        "relay": "http://r",
    }
    everything, cardiology = Scope().to_json(), Scope(specialties=("cardiology",)).to_json()
    with store.transaction():
        shares.apply_op(store, {**base, "scope": everything, "revoked": "", "s": "1"})
        shares.apply_op(store, {**base, "scope": cardiology, "revoked": "", "s": "3"})
        shares.apply_op(store, {**base, "scope": everything, "revoked": "2024-02-01", "s": "2"})
    (share,) = shares.all_shares(store)
    assert share.scope.specialties == ("cardiology",) and share.state() == "revoked"
    store.close()


@pytest.mark.parametrize("expires", [float("inf"), float("nan"), 1e300, -1.0, 0.0])
def test_an_invitation_with_an_impossible_expiry_is_not_an_invitation(expires: float) -> None:
    # iso() of such a time raised inside the practitioner's round, every round.
    box = PrivateKey.generate()
    keys = MailboxKeys.from_secret(bytes(32))
    valid_id = "0" * 32
    invitation = invitations.Invitation(
        valid_id, bytes(32), "Patient", "", expires, "all", keys, None
    )
    sealed = SealedBox(box.public_key).encrypt(json.dumps(invitation.to_json()).encode())
    with pytest.raises(ValueError, match="not an invitation"):
        invitations.unseal(box, {"inv": base64.b64encode(sealed).decode()})


@pytest.mark.parametrize("share_id", ["s1", "0" * 31 + "G", "0" * 64, ""])
def test_an_invitation_with_a_malformed_share_id_is_not_an_invitation(share_id: str) -> None:
    # A share id chosen by a sender could collide on purpose with another patient's share.
    box = PrivateKey.generate()
    keys = MailboxKeys.from_secret(bytes(32))
    invitation = invitations.Invitation(share_id, bytes(32), "P", "", 2e9, "all", keys, None)
    sealed = SealedBox(box.public_key).encrypt(json.dumps(invitation.to_json()).encode())
    with pytest.raises(ValueError, match="not an invitation"):
        invitations.unseal(box, {"inv": base64.b64encode(sealed).decode()})
    good = invitations.Invitation("ab" * 16, bytes(32), "P", "", 2e9, "all", keys, None)
    sealed = SealedBox(box.public_key).encrypt(json.dumps(good.to_json()).encode())
    assert invitations.unseal(box, {"inv": base64.b64encode(sealed).decode()}).share_id == "ab" * 16
