"""Pairing in person (SPAKE2 over the relay): the right code pins both sides; a wrong
code, or a relay that swaps a pairing message for its own, pins nothing."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from spake2 import SPAKE2_Symmetric

from carnet.daemon.keys import Secrets
from carnet.daemon.sharing import pairing
from carnet.daemon.sharing.wordlist import SECOND
from carnet.protocol import wire
from carnet.protocol.envelope import GENESIS, open_entry, seal
from tests.support.relay_process import RelayProcess

from .conftest import Person, init

FORWARDED = ("Content-Type", "X-Carnet-Auth")


class SwappingRelay:
    """A man in the middle of the real relay that, like a malicious relay operator, finds
    pairing mailboxes by listing nameplates and serves its own SPAKE2 message in place of
    the one of the side that showed the code."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.nameplates = {pairing.mailbox(n).hex_id: n for n in range(1, pairing.NAMEPLATES + 1)}
        self.writer = Secrets.generate().writer
        self.swapped = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> SwappingRelay:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    async def _forward(self, request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k in FORWARDED}
        async with (
            ClientSession() as session,
            session.request(
                request.method,
                self.upstream + request.path_qs,
                data=await request.read() or None,
                headers=headers,
            ) as answer,
        ):
            payload, status = await answer.read(), answer.status
        parts = request.path.split("/")
        if request.method == "GET" and status == 200 and parts[-1] == "entries":
            nameplate = self.nameplates.get(parts[-2])
            if nameplate is not None:
                payload = self._swap(nameplate, payload)
        return web.Response(body=payload, status=status, content_type="application/json")

    def _swap(self, nameplate: int, payload: bytes) -> bytes:
        keys = pairing.mailbox(nameplate)
        page = json.loads(payload)
        for item in page["entries"]:
            body = open_entry(keys, wire.entry_from_json(item), lambda d, c: True).body
            if "pake" in body and "confirm" not in body:  # the first message, from the shower
                guess = SPAKE2_Symmetric(b"1-not-the-code", idSymmetric=b"carnet/pair/v1")
                forged = seal(keys, self.writer, 1, GENESIS, {"pake": guess.start().hex()})
                item.update(writer=forged.writer.hex(), data=base64.b64encode(forged.data).decode())
                self.swapped += 1
        return json.dumps(page).encode()


@pytest.fixture
def proxy(relay: RelayProcess) -> Iterator[SwappingRelay]:
    with SwappingRelay(relay.url) as running:
        yield running


def two(tmp_path: Path, url: str) -> tuple[Person, Person]:
    patient = init(tmp_path / "patient", url, "Pat Ient")
    doctor = init(tmp_path / "doctor", url, "Dr Paired", "--practitioner")
    return patient, doctor


def show_code(doctor: Person) -> tuple[str, object]:
    shower = doctor.start("pair", "--name", "pat", "--timeout", "30s", "--json")
    assert shower.stdout is not None
    return shower.stdout.readline().strip(), shower


def finish(shower: object) -> tuple[int, str, str]:
    out, err = shower.communicate(timeout=60)  # type: ignore[attr-defined]
    return shower.returncode, out, err  # type: ignore[attr-defined]


def pinned(person: Person) -> list[dict[str, str]]:
    return list(person.json("contact", "list"))


def test_right_code_pins_both_sides_with_the_same_words(
    tmp_path: Path, relay: RelayProcess
) -> None:
    patient, doctor = two(tmp_path, relay.url)
    code, shower = show_code(doctor)
    joined = patient.json("pair", code, "--name", "doc")
    returncode, out, err = finish(shower)
    assert returncode == 0, err
    shown = json.loads(out)
    assert shown["confirmation"] == joined["confirmation"]
    assert len(joined["confirmation"].split("-")) == 3
    assert joined["fingerprint"] == doctor.json("contact")["fingerprint"]
    assert shown["fingerprint"] == patient.json("contact")["fingerprint"]
    assert [c["alias"] for c in pinned(patient)] == ["doc"]
    assert [c["alias"] for c in pinned(doctor)] == ["pat"]
    again = patient.run("pair", code, "--name", "doc2", "--timeout", "5s", code=1)
    assert "unknown, used or expired" in again.stderr


def test_wrong_code_fails_on_both_sides_and_pins_nothing(
    tmp_path: Path, relay: RelayProcess
) -> None:
    patient, doctor = two(tmp_path, relay.url)
    code, shower = show_code(doctor)
    nameplate, first, second = code.split("-")
    wrong = f"{nameplate}-{first}-{next(w for w in SECOND if w != second)}"
    typo = patient.run("pair", wrong, "--name", "doc", "--timeout", "30s", code=1)
    returncode, _, err = finish(shower)
    assert returncode == 1 and "codes differ" in err and "nothing was pinned" in err
    assert "Pairing failed" in typo.stderr and typo.stderr.count("\n") == 1
    assert pinned(patient) == pinned(doctor) == []


def test_relay_swapping_a_pairing_message_is_detected(tmp_path: Path, proxy: SwappingRelay) -> None:
    patient, doctor = two(tmp_path, proxy.url)
    code, shower = show_code(doctor)
    attacked = patient.run("pair", code, "--name", "doc", "--timeout", "30s", code=1)
    returncode, _, err = finish(shower)
    assert proxy.swapped >= 1
    assert returncode == 1 and "someone interfered" in err
    assert "Pairing failed and nothing was pinned" in attacked.stderr
    assert pinned(patient) == pinned(doctor) == []
