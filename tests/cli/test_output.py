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
