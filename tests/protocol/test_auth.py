from nacl.signing import SigningKey

from carnet.protocol.auth import HEADER, MAX_SKEW, sign_request, verify_request


def test_signed_request_verifies_only_unchanged_and_fresh() -> None:
    key = SigningKey.generate()
    pub = bytes(key.verify_key)
    header = sign_request(key, "POST", "/v1/mailboxes/ab/entries", b"{}", now=1000)[HEADER]
    assert verify_request(pub, "POST", "/v1/mailboxes/ab/entries", b"{}", header, now=1000)
    assert not verify_request(pub, "POST", "/v1/mailboxes/ab/entries", b"{ }", header, now=1000)
    assert not verify_request(pub, "GET", "/v1/mailboxes/ab/entries", b"{}", header, now=1000)
    assert not verify_request(pub, "POST", "/v1/mailboxes/ac/entries", b"{}", header, now=1000)
    stale = 1000 + MAX_SKEW + 1
    assert not verify_request(pub, "POST", "/v1/mailboxes/ab/entries", b"{}", header, now=stale)
    other = bytes(SigningKey.generate().verify_key)
    assert not verify_request(other, "POST", "/v1/mailboxes/ab/entries", b"{}", header, now=1000)
    for garbage in (None, "", "x", "12.!!", "abc.def"):
        assert not verify_request(pub, "GET", "/", b"", garbage, now=1000)


def test_absurd_timestamp_is_refused_not_a_crash() -> None:
    pub = bytes(SigningKey.generate().verify_key)
    assert not verify_request(pub, "GET", "/", b"", "9" * 400 + ".AAAA", now=1000)
