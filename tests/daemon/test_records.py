import pytest

from carnet.daemon.records import STATUSES, new_record, validate
from carnet.protocol.errors import InvalidRecord

BASE = {"practitioner": "Dr Jeanne Martin", "start": "2026-12-01T09:30:00+01:00"}


def test_new_record_normalises_and_defaults() -> None:
    record = new_record({**BASE, "specialty": "  cardiology "})
    assert record.status == "booked"
    assert record.specialty == "cardiology"
    assert record.end == "2026-12-01T10:00:00+01:00"
    assert len(record.id) == 32 and record.created and record.updated


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({**BASE, "status": "maybe"}, "unknown status 'maybe'"),
        ({**BASE, "practitioner": "  "}, "practitioner must not be empty"),
        ({**BASE, "start": "2026-12-01T09:30"}, "has no time zone"),
        ({**BASE, "start": "tomorrow"}, "not an ISO 8601 date-time"),
        ({**BASE, "end": "2026-12-01T08:00:00+01:00"}, "is before start"),
        ({**BASE, "colour": "red"}, "unknown field 'colour'"),
        ({**BASE, "notes": "x" * 5000}, "longer than"),
        ({**BASE, "notes": "a\x00b"}, "NUL"),
        ({"practitioner": "Dr X"}, "start is required"),
    ],
)
def test_invalid_input_gets_one_clear_line(changes: dict, message: str) -> None:
    with pytest.raises(InvalidRecord, match=message) as err:
        new_record(changes)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("Invalid appointment: ")


def test_every_fhir_status_is_accepted() -> None:
    for status in STATUSES:
        assert validate({**BASE, "status": status})["status"] == status


def test_edit_is_checked_against_the_current_record() -> None:
    current = new_record(BASE).to_dict()
    with pytest.raises(InvalidRecord, match="before start"):
        validate({"end": "2026-12-01T09:00:00+01:00"}, current)
    assert validate({"notes": "bring results"}, current) == {"notes": "bring results"}
