from click.testing import CliRunner

from carnet.cli.output import print_record, print_table, shown


def test_control_characters_are_shown_never_interpreted() -> None:
    hostile = "Dr \x1b]0;owned\x07Evil\x1b[2J"
    assert "\x1b" not in shown(hostile) and "\x07" not in shown(hostile)
    assert shown("line one\nline two\tend") == "line one line two end"
    assert shown("Hôpital Lariboisière") == "Hôpital Lariboisière"


def test_printers_use_the_safe_form() -> None:
    runner = CliRunner()
    with runner.isolation() as (out, _, _):
        print_table([{"name": "\x1b[31mred"}], ["name"])
        print_record({"notes": "a\x1bb"})
    assert b"\x1b" not in out.getvalue()


def test_sync_line_mentions_sharing_only_when_something_moved() -> None:
    from carnet.cli.syncing import describe
    from carnet.daemon.sync.engine import SyncReport

    quiet = SyncReport(1, 1, 0, 0, 5)
    assert describe(quiet) == "Pushed 1 change (1 entry); pulled 0 changes (0 entries)."
    busy = SyncReport(0, 0, 2, 7, 9, shared_entries_pushed=3, notes_received=1)
    assert describe(busy).endswith("Sharing: 3 shared entries sent, 1 practitioner note received.")
