"""_time: the one reader and writer of ISO-8601 / RFC 3339 times."""
import datetime

import pytest

from ansible_collections.credops.rotation.plugins.module_utils import _time

UTC = datetime.timezone.utc
T0 = datetime.datetime(2024, 8, 15, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize("value", [
    "2024-08-15T10:30:00Z", "2024-08-15T10:30:00z", "2024-08-15T10:30:00+00:00", "2024-08-15T12:30:00+02:00",
    "2024-08-15T05:30:00-0500", "2024-08-15T11:30:00+01", "2024-08-15 10:30:00", "2024-08-15T10:30",
    "2024-08-15T10:30:00.000000000Z", " 2024-08-15T10:30:00Z ", datetime.datetime(2024, 8, 15, 10, 30),
    datetime.datetime(2024, 8, 15, 12, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
])
def test_parse_time_accepts_every_spelling_the_collection_meets(value):
    assert _time.parse_time(value) == T0


@pytest.mark.parametrize("text, micro", [
    ("2024-08-15T10:30:00.1Z", 100000), ("2024-08-15T10:30:00.123Z", 123000),
    ("2024-08-15T10:30:00.123456789Z", 123456), ("2024-08-15T10:30:00,5Z", 500000),
])
def test_parse_time_cuts_fractions_to_microseconds(text, micro):
    assert _time.parse_time(text).microsecond == micro


def test_parse_time_dates_none_and_refusals():
    assert _time.parse_time(datetime.date(2024, 8, 15)) == T0.replace(hour=0, minute=0)
    assert _time.parse_time("2024-08-15") == T0.replace(hour=0, minute=0)
    assert _time.parse_time(None) is None and _time.parse_time("") is None
    for bad in ("yesterday", "2024-13", "15/08/2024", "2024-08-15T10:30:00+bad", 12, 1.5):
        with pytest.raises(ValueError):
            _time.parse_time(bad)
    for missing in (None, ""):
        with pytest.raises(ValueError):
            _time.parse_time(missing, required=True)


@pytest.mark.parametrize("value, fraction, expected", [
    (T0, False, "2024-08-15T10:30:00Z"),
    (T0.replace(microsecond=123456), False, "2024-08-15T10:30:00Z"),
    (T0.replace(microsecond=123456), True, "2024-08-15T10:30:00.123456Z"),
    (T0, True, "2024-08-15T10:30:00.000000Z"),
    (T0, "auto", "2024-08-15T10:30:00Z"),
    (T0.replace(microsecond=5), "auto", "2024-08-15T10:30:00.000005Z"),
    ("2024-08-15T12:30:00+02:00", False, "2024-08-15T10:30:00Z"),
    (0, False, "1970-01-01T00:00:00Z"),
    (1723717800.9, False, "2024-08-15T10:30:00Z"),
    (None, False, None),
])
def test_format_time(value, fraction, expected):
    assert _time.format_time(value, fraction=fraction) == expected


def test_now_is_aware_utc_and_now_iso_reads_back():
    before = _time.now()
    text = _time.now_iso(fraction=True)
    assert before.tzinfo == UTC
    assert before.replace(microsecond=0) <= _time.parse_time(text) <= _time.now()
    assert _time.now_iso().endswith("Z") and len(_time.now_iso()) == 20


@pytest.mark.parametrize("value, expected", [
    ("2024-08-15T12:30:00.5+02:00", "2024-08-15T10:30:00Z"),
    (datetime.datetime(2024, 8, 15, 10, 30), "2024-08-15T10:30:00Z"),
    ("not a time", "not a time"), (" kept ", "kept"), (5, "5"), ("", None), (None, None),
])
def test_normalize_time_keeps_what_is_no_time(value, expected):
    assert _time.normalize_time(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("2024-08-15T10:30:00.999Z", 1723717800), ("2024-08-15T12:30:00+02:00", 1723717800),
    ("nonsense", None), (None, None), (17, None),
])
def test_unix_seconds(value, expected):
    assert _time.unix_seconds(value) == expected


def test_from_timestamp():
    assert _time.from_timestamp(1723717800) == T0
