"""carnetd as systemd runs it: notify protocol, signals, reload, exit codes."""

import re
import signal
import time
from pathlib import Path

import pytest

from carnet.daemon.config import Config
from tests.daemon_process.conftest import StartDaemon
from tests.daemon_process.harness import carnet, init_device, wait_until
from tests.support.relay_process import start_relay


def exit_code(process: object, timeout: float = 15.0) -> int:
    proc = process.proc  # type: ignore[attr-defined]
    return int(proc.wait(timeout))


def test_notify_protocol_and_a_prompt_clean_stop(tmp_path: Path, daemon: StartDaemon) -> None:
    home = init_device(tmp_path / "a")
    carnetd = daemon(home, {"WATCHDOG_USEC": "200000"})  # ping every 0.1 s
    carnetd.wait_for("WATCHDOG=1", 5)
    messages = carnetd.notify.messages()
    ready = next(m for m in messages if "READY=1" in m)
    assert "STATUS=" in ready
    assert any(m.startswith("STATUS=offline") for m in messages)  # the relay is unreachable
    began = time.monotonic()
    assert carnetd.stop() == 0
    assert time.monotonic() - began < 3
    assert any("STOPPING=1" in m for m in carnetd.notify.messages())
    assert "carnetd stopping" in carnetd.log()


def test_sighup_reloads_the_configuration_and_keeps_it_if_bad(
    tmp_path: Path, daemon: StartDaemon
) -> None:
    home = init_device(tmp_path / "a")
    carnet(home, "add", "--practitioner", "Dr Reload", "--start", "2031-05-01T09:00Z")
    carnetd = daemon(home)
    assert carnetd.status()["relay_reachable"] is False
    config_file = home / "config.toml"
    with start_relay(tmp_path / "relay") as relay:
        config = Config.load(config_file, {})
        config.relay = relay.url
        config.save(config_file)
        carnetd.send(signal.SIGHUP)
        wait_until(
            lambda: carnetd.status().get("subscribed"), 10, "a subscription to the new relay"
        )
        wait_until(lambda: '"pending": 0' in carnet(home, "status", "--json").stdout, 10)
        assert "configuration reloaded" in carnetd.log()

        config_file.write_text(config_file.read_text() + 'push_debounce_ms = "soon"\n')
        carnetd.send(signal.SIGHUP)
        wait_until(lambda: "configuration not reloaded" in carnetd.log(), 10, "the refusal")
        assert carnetd.running and carnetd.status()["subscribed"] is True
        assert carnetd.stop() == 0


@pytest.mark.parametrize(
    ("config", "env", "args", "message"),
    [
        ("relay = [", {}, (), "config.toml"),
        ("", {"CARNET_REMINDER_LEADS": "1d,someday"}, (), "duration 'someday'"),
        ("", {}, ("--reminder-lead", "soon"), "duration 'soon'"),
        ("", {}, ("--relay", "ftp://relay"), "must start with http"),
        ("", {}, ("--inbox", "{home}/keys.json/inbox"), "inbox"),
    ],
)
def test_a_bad_configuration_exits_78_with_one_line(
    tmp_path: Path,
    daemon: StartDaemon,
    config: str,
    env: dict[str, str],
    args: tuple[str, ...],
    message: str,
) -> None:
    home = init_device(tmp_path / "a")
    if config:
        (home / "config.toml").write_text(config)
    args = tuple(a.replace("{home}", str(home)) for a in args)
    carnetd = daemon(home, env, *args, ready=False)
    assert exit_code(carnetd) == 78
    [line] = carnetd.log().splitlines()
    assert line.startswith("carnetd: Invalid configuration:") and message in line


def test_no_identity_exits_1(tmp_path: Path, daemon: StartDaemon) -> None:
    carnetd = daemon(tmp_path / "nobody", ready=False)
    assert exit_code(carnetd) == 1
    assert carnetd.log().splitlines() == [
        "carnetd: This device has no carnet identity yet; run `carnet init --relay URL` first."
    ]


def test_one_daemon_per_device(tmp_path: Path, daemon: StartDaemon) -> None:
    home = init_device(tmp_path / "a")
    first = daemon(home)
    second = daemon(home, ready=False)
    assert exit_code(second) == 1
    assert "carnetd already runs for this device" in second.log()
    assert first.running


def test_journald_priorities_when_stderr_is_the_journal(
    tmp_path: Path, daemon: StartDaemon
) -> None:
    home = init_device(tmp_path / "a")
    log = home.with_name("a-carnetd.log")  # where the harness sends carnetd's stderr
    log.touch()
    stream = log.stat()
    carnetd = daemon(home, {"JOURNAL_STREAM": f"{stream.st_dev}:{stream.st_ino}"})
    assert carnetd.stop() == 0
    lines = carnetd.log().splitlines()
    assert "<4>carnetd.sync: relay unreachable; working offline, retrying with backoff" in lines
    assert "<6>carnetd: carnetd ready" in lines
    assert all(re.match(r"<[3-7]>", line) for line in lines)


def test_a_sealed_key_needs_its_passphrase(tmp_path: Path, daemon: StartDaemon) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse battery staple\n")
    home = tmp_path / "a"
    carnet(home, "init", "--relay", "http://127.0.0.1:9", "--passphrase-file", str(secret))
    locked = daemon(home, ready=False)
    assert exit_code(locked) == 1
    assert locked.log().splitlines()[-1].startswith("carnetd: The key file cannot be used:")
    unlocked = daemon(home, {"CARNET_PASSPHRASE_FILE": str(secret)})
    assert unlocked.stop() == 0
