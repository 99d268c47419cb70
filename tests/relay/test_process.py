"""The real ``carnet-relay serve`` process: restarts, signals, durability, blind logs, systemd."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from carnet.protocol import auth, wire
from carnet.protocol.envelope import Entry
from carnet.protocol.mailbox import MailboxKeys
from tests.relay.helpers import Api, Device, new_keys
from tests.support.relay_process import RelayProcess, start_relay


async def create_with_entries(relay: RelayProcess, count: int) -> tuple[MailboxKeys, list[Entry]]:
    keys = new_keys()
    entries = Device(keys).batch(count)
    async with aiohttp.ClientSession() as session:
        api = Api(session, relay.url)
        assert (await api.create(keys)).status == 201
        assert (await api.append(keys, entries)).status == 200
    return keys, entries


async def read_all(relay: RelayProcess, keys: MailboxKeys) -> list[Entry]:
    async with aiohttp.ClientSession() as session:
        page = await Api(session, relay.url).read(keys)
    assert page.status == 200 and not page.body["more"]
    return [Entry(bytes.fromhex(e["writer"]), e["seq"], b"") for e in page.body["entries"]]


def keyset(entries: list[Entry]) -> set[tuple[bytes, int]]:
    return {(e.writer, e.seq) for e in entries}


def run_relay(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carnet.relay.main", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


async def test_restart_keeps_the_url_and_the_data(tmp_path: Path) -> None:
    with start_relay(tmp_path / "data") as relay:
        keys, entries = await create_with_entries(relay, 3)
        url = relay.url
        assert relay.restart().url == url
        assert keyset(await read_all(relay, keys)) == keyset(entries)
    stats = run_relay("stats", "--data", str(tmp_path / "data"), "--json")
    size = sum(len(e.data) for e in entries)
    assert json.loads(stats.stdout) == {"mailboxes": 1, "entries": 3, "bytes": size}
    text = run_relay("stats", "--data", str(tmp_path / "data")).stdout
    assert text.splitlines() == ["mailboxes: 1", "entries: 3", f"bytes: {size}"]


async def test_sigterm_closes_subscriptions_and_keeps_every_acknowledged_write(
    tmp_path: Path,
) -> None:
    with start_relay(tmp_path / "data") as relay:
        keys, first = await create_with_entries(relay, 5)
        acknowledged: list[Entry] = []
        async with aiohttp.ClientSession() as session:
            api = Api(session, relay.url)

            async def keep_writing(device: Device) -> None:
                # Appends one after another until the relay stops answering.
                while True:
                    entry = device.next()
                    try:
                        reply = await api.append(keys, [entry])
                    except (aiohttp.ClientError, OSError):
                        return
                    if reply.status != 200:
                        return
                    acknowledged.append(entry)

            ws = await api.subscribe(keys)
            writers = [asyncio.ensure_future(keep_writing(Device(keys))) for _ in range(8)]
            while len(acknowledged) < 40:
                await asyncio.sleep(0.01)
            assert relay.proc is not None
            relay.proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            while (msg := await asyncio.wait_for(ws.receive(), 15)).type == aiohttp.WSMsgType.TEXT:
                pass  # cursors pushed before the shutdown
            # The frame's code: the client's own close_code turns 1006 when its reply
            # meets a connection the exiting relay has already closed.
            assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 1001), msg
            await asyncio.wait_for(asyncio.gather(*writers), 15)
        assert await asyncio.to_thread(relay.stop) == 0
        assert time.monotonic() - started < 10
        relay.start()
        assert keyset(first + acknowledged) <= keyset(await read_all(relay, keys))


async def test_a_crash_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    with start_relay(tmp_path / "data") as relay:
        keys, entries = await create_with_entries(relay, 20)
        relay.kill()
        relay.start()
        assert keyset(await read_all(relay, keys)) == keyset(entries)


async def test_logs_name_routes_never_mailboxes_contents_or_clients(tmp_path: Path) -> None:
    keys = new_keys()
    entries = Device(keys).batch(2)
    with start_relay(tmp_path / "data", "--log-level", "debug") as relay:
        async with aiohttp.ClientSession() as session:
            api = Api(session, relay.url)
            await api.create(keys)
            await api.append(keys, entries)
            await api.read(keys, after=0, limit=5)
            await api.append(keys, entries, key=keys.read_signer())  # refused: 401
            await api.call("POST", f"/v1/mailboxes/{keys.hex_id}/entries", raw=b"{bad")
            await api.call("GET", f"/v1/mailboxes/{keys.hex_id}/nowhere")
            async with await api.subscribe(keys) as ws:
                await ws.receive()
            # aiohttp itself logs the client's address for these two; the relay must mask it.
            path = wire.mailbox_path(keys.mailbox_id, "/subscribe")
            headers = auth.sign_request(keys.read_signer(), "GET", path, b"")
            async with session.ws_connect(relay.url + path, headers=headers, protocols=["x"]):
                pass
            with socket.create_connection(("127.0.0.1", relay.port)) as raw:
                raw.sendall(f"GET /v1/mailboxes/{keys.hex_id}\x00 HTTP/1.1\r\n\r\n".encode())
                raw.recv(1000)
            await api.delete(keys)
    logs = relay.logs()
    secrets = [keys.hex_id, keys.hex_id.upper(), bytes(keys.read_signer().verify_key).hex()]
    for entry in entries:
        secrets += [entry.writer.hex(), entry.data[:24].hex()]
        secrets.append(base64.b64encode(entry.data).decode()[:40])
    for secret in secrets:
        assert secret not in logs
    assert "POST /v1/mailboxes/{id}/entries 200" in logs
    assert "POST /v1/mailboxes/{id}/entries 401" in logs
    assert " ERROR " not in logs  # malformed requests are the client's fault, not errors
    for line in logs.splitlines():
        assert "127.0.0.1" not in line or "listening on" in line, line


def test_bad_configuration_exits_78_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "relay.toml"
    cases = {
        "listen = [": "relay.toml",
        'listen = "nowhere"': "listen must be HOST:PORT",
        "lisen = 'x'": "unknown setting 'lisen'",
        "heartbeat = -1": "heartbeat must be",
    }
    for text, reason in cases.items():
        bad.write_text(text)
        done = run_relay("serve", "--config", str(bad), "--data", str(tmp_path / "d"))
        assert done.returncode == 78, done
        assert done.stderr.count("\n") == 1 and reason in done.stderr, done.stderr
    done = run_relay("serve", "--config", str(tmp_path / "missing.toml"), "--data", "x")
    assert done.returncode == 78 and "cannot read" in done.stderr
    env = {"STATE_DIRECTORY": "", "CONFIGURATION_DIRECTORY": ""}
    done = run_relay("serve", env=env)
    assert done.returncode == 78 and "no store" in done.stderr
    (tmp_path / "file").write_text("")
    done = run_relay("serve", "--data", str(tmp_path / "file" / "data"))
    assert done.returncode == 78 and done.stderr.startswith("carnet-relay: Invalid configuration")


def test_settings_come_from_systemd_directories(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "relay.toml").write_text('listen = "127.0.0.1:0"\nlog_level = "warning"')
    env = {"CONFIGURATION_DIRECTORY": str(tmp_path / "etc"), "STATE_DIRECTORY": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "carnet.relay.main", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("carnet-relay listening on http://127.0.0.1:")
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert stderr == ""  # log_level = "warning" came from the file
    assert (tmp_path / "relay.sqlite3").exists()


def test_runtime_failures_are_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_relay("serve", "--data", str(tmp_path / "a"), "--listen", f"127.0.0.1:{port}")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith("carnet-relay: Cannot listen on the address")
    assert "Traceback" not in done.stderr
    with start_relay(tmp_path / "b"):
        done = run_relay("serve", "--data", str(tmp_path / "b"), "--listen", "127.0.0.1:0")
    assert done.returncode == 1 and "another carnet-relay is using" in done.stderr
    done = run_relay("stats", "--data", str(tmp_path / "nothing"))
    assert (done.returncode, done.stderr) == (
        1,
        f"carnet-relay: no relay database in {tmp_path / 'nothing'}\n",
    )


def test_systemd_hears_ready_watchdog_and_stopping(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(tmp_path / "notify"))
        manager.settimeout(10)
        env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "200000"}
        with start_relay(tmp_path / "data", env=env) as relay:
            heard = [manager.recv(4096).decode() for _ in range(3)]
            relay.stop()
            while "STOPPING=1" not in heard[-1]:
                heard.append(manager.recv(4096).decode())
    assert heard[0] == f"READY=1\nSTATUS=listening on {relay.url}"
    assert heard[1:3] == ["WATCHDOG=1", "WATCHDOG=1"]  # every 0.1 s
    assert heard[-1] == "STOPPING=1\nSTATUS=shutting down"
