from carnet.daemon.carnetd.live import safe_reason
from carnet.protocol.errors import RelayRefused, RelayUnreachable


def test_reasons_never_carry_mailbox_ids() -> None:
    mailbox = "9f" * 32
    reason = safe_reason(RelayRefused(f"404 'no such mailbox {mailbox}'"))
    assert mailbox[:16] not in reason
    assert reason == "The relay refused the request: 404 'no such mailbox …'"


def test_reasons_keep_what_helps() -> None:
    reason = safe_reason(RelayUnreachable("http://127.0.0.1:8470 (ClientConnectorError)"))
    assert "http://127.0.0.1:8470 (ClientConnectorError)" in reason
