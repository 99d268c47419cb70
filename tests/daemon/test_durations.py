from pathlib import Path

import pytest

from carnet.daemon.config import Config, parse_duration
from carnet.protocol.errors import InvalidConfig


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2s", 2), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1w", 604800), ("1h30m", 5400)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "h", "2x", "-1h", "0m", "1.5h", "2h 3"])
def test_bad_durations_are_one_line_config_errors(text: str) -> None:
    with pytest.raises(InvalidConfig) as err:
        parse_duration(text)
    assert "\n" not in str(err.value)


def test_reminder_leads_are_checked_when_loading(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('reminder_leads = ["1d", "soon"]\n')
    with pytest.raises(InvalidConfig, match="reminder_leads: duration 'soon'"):
        Config.load(path, {})
    with pytest.raises(InvalidConfig, match="reminder_leads"):
        Config.load(tmp_path / "none.toml", {"CARNET_REMINDER_LEADS": "1d,x"})


def test_reminder_leads_in_seconds_without_repeats() -> None:
    config = Config(reminder_leads=["2h", "1d", "120m"])
    assert config.reminder_lead_seconds == [86400, 7200]


def test_reminder_command_is_split_like_a_shell_but_checked(tmp_path: Path) -> None:
    config = Config(reminder_command="notify-send 'carnet reminder' \"{summary}\"")
    assert config.reminder_argv() == ["notify-send", "carnet reminder", "{summary}"]
    with pytest.raises(InvalidConfig, match="reminder_command"):
        Config.load(tmp_path / "none.toml", {"CARNET_REMINDER_COMMAND": "notify-send 'open"})


def test_negative_timings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="inbox_settle_ms must not be negative"):
        Config.load(tmp_path / "none.toml", {"CARNET_INBOX_SETTLE_MS": "-5"})
