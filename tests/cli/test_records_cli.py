import json

import pytest

from .conftest import Run


def test_add_list_show_edit_cancel_delete(initialised: Run) -> None:
    carnet = initialised
    added = carnet(
        "add",
        "--practitioner",
        "Dr Jeanne Martin",
        "--start",
        "2026-12-01T09:30+01:00",
        "--specialty",
        "cardiology",
        "--practitioner-id",
        "rpps:10003456789",
        "--reason",
        "check-up",
        "--patient-instruction",
        "fast",
    )
    assert added.exit_code == 0, added.output
    record_id = added.output.strip()
    listed = json.loads(carnet("list", "--json").output)
    assert [r["id"] for r in listed] == [record_id]
    for key in (
        "id",
        "status",
        "start",
        "end",
        "practitioner",
        "specialty",
        "location",
        "reason",
        "notes",
    ):
        assert key in listed[0]
    assert listed[0]["practitioner_id"] == "rpps:10003456789"
    assert carnet("edit", record_id, "--notes", "bring ECG").exit_code == 0
    shown = json.loads(carnet("show", record_id, "--json").output)
    assert shown["notes"] == "bring ECG"
    assert carnet("cancel", record_id).exit_code == 0
    assert json.loads(carnet("show", record_id, "--json").output)["status"] == "cancelled"
    assert "Dr Jeanne Martin" in carnet("list").output
    assert carnet("delete", record_id).exit_code == 0
    assert json.loads(carnet("list", "--json").output) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2026-12-01T09:30+01:00", "--practitioner", ""], "practitioner must not"),
        (["--start", "2026-12-01T09:30", "--practitioner", "X"], "no time zone"),
        (
            ["--start", "2026-12-01T09:30Z", "--end", "2026-12-01T09:00Z", "--practitioner", "X"],
            "before start",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    initialised: Run, args: list[str], message: str
) -> None:
    result = initialised("add", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert json.loads(initialised("list", "--json").output) == []


def test_unknown_status_is_a_usage_error(initialised: Run) -> None:
    result = initialised(
        "add", "--practitioner", "X", "--start", "2026-12-01T09:30Z", "--status", "maybe"
    )
    assert result.exit_code == 2 and "maybe" in result.output


def test_unknown_id_and_missing_init(carnet: Run, initialised: Run, tmp_path) -> None:
    result = initialised("show", "0" * 32)
    assert result.exit_code == 1 and "No appointment with that id" in result.output
    fresh = carnet("list", home_dir=tmp_path / "other")
    assert fresh.exit_code == 1 and "carnet init" in fresh.output


def test_init_twice_is_refused(initialised: Run) -> None:
    again = initialised("init", "--relay", "http://127.0.0.1:9", "--no-passphrase")
    assert again.exit_code == 1 and "already has a carnet identity" in again.output


def test_every_command_has_help(carnet: Run) -> None:
    from carnet.cli.main import cli

    def walk(group, prefix):
        for name, command in group.commands.items():
            yield [*prefix, name]
            if hasattr(command, "commands"):
                yield from walk(command, [*prefix, name])

    for path in walk(cli, []):
        result = carnet(*path, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output, path


def test_sync_with_unreachable_relay_is_one_line(initialised: Run) -> None:
    initialised("add", "--practitioner", "X", "--start", "2026-12-01T09:30Z")
    result = initialised("sync")
    assert result.exit_code == 1
    assert "Cannot reach the relay" in result.output and result.output.count("\n") == 1
    status = json.loads(initialised("status", "--json").output)
    assert status["pending"] == 1 and status["relay_reachable"] is False
