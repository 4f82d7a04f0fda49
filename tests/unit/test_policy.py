"""The policy table, on every boundary: the one place that says when a credential is due."""
import datetime

import pytest

from ansible_collections.credops.rotation.plugins.module_utils import _policy as policy
from ansible_collections.credops.rotation.plugins.module_utils import _x509

UTC = datetime.timezone.utc
T0 = datetime.datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
SECOND = datetime.timedelta(seconds=1)
DAY = datetime.timedelta(days=1)


def at(days, seconds=0):
    return T0 + datetime.timedelta(days=days, seconds=seconds)


TABLE = [
    ("api_key", "standard", 90), ("api_key", "high", 30),
    ("oauth_client_secret", "standard", 180), ("oauth_client_secret", "high", 90),
    ("service_account_token", "standard", 90), ("service_account_token", "high", 30),
    ("database", "standard", 90), ("database", "high", 30),
    ("webhook_secret", "standard", 180), ("webhook_secret", "high", 90),
]


@pytest.mark.parametrize("ctype,risk,days", TABLE)
def test_table_maximum_per_type_and_risk(ctype, risk, days):
    assert policy.max_age_days({"type": ctype, "risk": risk}) == days
    result = policy.status({"type": ctype, "risk": risk}, T0, at(0))
    assert result["max_age_days"] == days
    assert result["due_at"] == policy.format_time(at(days))


@pytest.mark.parametrize("ctype,risk,days", TABLE)
@pytest.mark.parametrize("offset,expected", [
    (-14 * 86400 - 1, "ok"),        # one second before the 14-day window
    (-14 * 86400, "warning"),       # the window's first second
    (-14 * 86400 + 1, "warning"),
    (-1, "warning"),                # one second before the maximum
    (0, "warning"),                 # exactly at the maximum: not yet past it
    (1, "overdue"),                 # one second after
    (86400, "overdue"),
])
def test_boundaries_of_every_row(ctype, risk, days, offset, expected):
    now = at(days, offset)
    result = policy.status({"type": ctype, "risk": risk}, policy.format_time(T0), now)
    assert result["status"] == expected
    assert result["warning_at"] == policy.format_time(at(days - 14))


@pytest.mark.parametrize("now,age", [(at(0), 0), (at(0, 86399), 0), (at(1), 1), (at(30, -1), 29), (at(30), 30)])
def test_age_is_whole_days_floored(now, age):
    assert policy.status({"type": "api_key"}, T0, now)["age_days"] == age


@pytest.mark.parametrize("risk,expected", [
    (None, 90), ("", 90), ("standard", 90), ("high", 30), ("critical", 30), ("HIGH", 30)])
def test_risk_default_and_unknown(risk, expected):
    record = {"type": "api_key"}
    if risk is not None:
        record["risk"] = risk
    result = policy.status(record, T0, at(1))
    assert result["max_age_days"] == expected
    if risk not in (None, "", "standard", "high"):
        assert "unknown risk" in result["reason"]


@pytest.mark.parametrize("override,offset,expected", [
    (10, -1, "warning"), (10, 0, "warning"), (10, 1, "overdue"),
    (365, -14 * 86400 - 1, "ok"), (365, -14 * 86400, "warning"), (365, 1, "overdue"),
    (1, 0, "warning"), (1, 1, "overdue"),
])
def test_max_age_days_overrides_the_table(override, offset, expected):
    record = {"type": "api_key", "risk": "high", "max_age_days": override}
    result = policy.status(record, T0, at(override, offset))
    assert result["status"] == expected
    assert result["max_age_days"] == override
    assert "override" in result["reason"]


def test_inventory_time_formats_are_equivalent():
    for value in ("2024-01-01T12:00:00Z", "2024-01-01T12:00:00+00:00", "2024-01-01T13:00:00+01:00",
                  "2024-01-01T12:00:00.000000000Z", "2024-01-01 12:00:00", "2024-01-01T07:00:00-0500",
                  datetime.datetime(2024, 1, 1, 12, 0), T0):
        assert policy.parse_time(value) == T0, value
    assert policy.parse_time(datetime.date(2024, 1, 1)) == T0 - datetime.timedelta(hours=12)
    assert policy.parse_time("2024-08-15T10:30:00.123456789Z").microsecond == 123456
    for bad in ("yesterday", "2024-13", "15/08/2024", 12):
        with pytest.raises(ValueError):
            policy.parse_time(bad)


def test_no_age_known_is_unknown_not_ok():
    result = policy.status({"type": "database"}, None, at(0))
    assert result["status"] == "unknown" and result["age_days"] is None and result["max_age_days"] == 90


def test_unknown_type_without_override_is_unknown():
    assert policy.status({"type": "ssh_key"}, T0, at(0))["status"] == "unknown"
    assert policy.status({"type": "ssh_key", "max_age_days": 5}, T0, at(6))["status"] == "overdue"


def test_clock_skew_future_rotation_is_age_zero_and_noted():
    result = policy.status({"type": "api_key"}, at(2), at(0))
    assert result["age_days"] == 0 and result["status"] == "ok" and "future" in result["reason"]


# --- certificates -------------------------------------------------------------------------------

@pytest.mark.parametrize("lifetime,due_day", [
    (90, 60),       # 1/3 left == 30 days before not_after: both say day 60
    (365, 365 - 365 / 3.0),  # 1/3 left (121.67 days) is earlier than 30 days before
    (60, 30),       # 30 days before (day 30) is earlier than 1/3 left (day 40)
    (45, 15),       # 30 days before: day 15
    (120, 80),      # 1/3 left: day 80 (30 days before would be day 90)
])
def test_certificate_due_by_the_earlier_rule(lifetime, due_day):
    not_before, not_after = T0, at(lifetime)
    due = T0 + datetime.timedelta(days=due_day)
    assert abs((policy.certificate_due_at(not_before, not_after) - due).total_seconds()) < 1
    record = {"type": "certificate"}
    due_exact = policy.certificate_due_at(not_before, not_after)
    assert policy.status(record, None, due_exact - SECOND, not_before, not_after)["status"] == "warning"
    assert policy.status(record, None, due_exact, not_before, not_after)["status"] == "warning"
    assert policy.status(record, None, due_exact + SECOND, not_before, not_after)["status"] == "overdue"
    assert policy.status(record, None, due_exact - 14 * DAY - SECOND, not_before, not_after)["status"] == "ok"
    assert policy.status(record, None, due_exact - 14 * DAY, not_before, not_after)["status"] == "warning"


def test_certificate_third_versus_thirty_days_crossover():
    # For a 90-day certificate both rules agree; one day longer and the third wins, one shorter the 30 days.
    assert policy.certificate_due_at(T0, at(90)) == at(60)
    assert policy.certificate_due_at(T0, at(91)) == at(91) - datetime.timedelta(days=91 / 3.0)
    assert policy.certificate_due_at(T0, at(89)) == at(59)


def test_certificate_age_starts_at_not_before_and_reports_lifetime():
    result = policy.status({"type": "certificate"}, "2020-01-01T00:00:00Z", at(10), T0, at(90))
    assert result["age_days"] == 10 and result["max_age_days"] == 60
    assert "90-day lifetime" in result["reason"]


def test_short_certificate_is_always_due_and_says_why():
    result = policy.status({"type": "certificate"}, None, at(0, 1), T0, at(20))
    assert result["status"] == "overdue" and result["max_age_days"] == 0
    assert "30 days or less" in result["reason"]


def test_certificate_override_never_later_than_not_after():
    record = {"type": "certificate", "max_age_days": 400}
    result = policy.status(record, None, at(90, 1), T0, at(90))
    assert result["status"] == "overdue" and result["due_at"] == policy.format_time(at(90))
    assert "expired" in result["reason"]
    short = policy.status({"type": "certificate", "max_age_days": 5}, None, at(5, 1), T0, at(90))
    assert short["status"] == "overdue"


def test_certificate_without_dates_falls_back_or_is_unknown():
    assert policy.status({"type": "certificate"}, T0, at(1))["status"] == "unknown"
    fallback = policy.status({"type": "certificate", "max_age_days": 10}, T0, at(11))
    assert fallback["status"] == "overdue"


def test_certificate_with_only_not_after_uses_the_margin():
    result = policy.status({"type": "certificate"}, None, at(61), None, at(90))
    assert result["status"] == "overdue" and result["due_at"] == policy.format_time(at(60))


# --- emergencies and the report rows ------------------------------------------------------------

@pytest.mark.parametrize("ctype,hours", [("api_key", 0), ("oauth_client_secret", 0), ("service_account_token", 0),
                                         ("database", 4), ("webhook_secret", 24), ("certificate", 0),
                                         ("unknown", 0)])
def test_emergency_maximum_delay(ctype, hours):
    assert policy.emergency_max_delay(ctype) == datetime.timedelta(hours=hours)


def test_due_report_sorts_by_urgency_and_never_carries_values():
    record = {"type": "api_key", "rotation_contact": "x@example.org",
              "consumers": [{"name": "a", "kind": "batch"}], "store": {"kind": "vault_kv2"}}
    entries = [
        {"credential": "fresh", "record": record, "last_rotated": at(0)},
        {"credential": "old", "record": record, "last_rotated": at(-200), "source": "inventory:last_rotated"},
        {"credential": "older", "record": record, "last_rotated": at(-300)},
        {"credential": "soon", "record": record, "last_rotated": at(-80)},
        {"credential": "broken", "record": record, "error": "store vault_kv2: connection refused"},
    ]
    rows = policy.due_report(entries, at(1))
    assert [r["credential"] for r in rows] == ["older", "old", "broken", "soon", "fresh"]
    assert [r["status"] for r in rows] == ["overdue", "overdue", "unknown", "warning", "ok"]
    broken = rows[2]
    assert broken["error"] == "store vault_kv2: connection refused" and broken["age_days"] is None
    assert rows[1]["source"] == "inventory:last_rotated" and rows[1]["consumers"] == ["a"]
    for key in ("credential", "type", "risk", "age_days", "max_age_days", "status", "consumers", "due_at"):
        assert key in rows[0]
    assert policy.summary(rows) == {"ok": 1, "warning": 1, "overdue": 2, "unknown": 1}


def test_certificate_dates_from_pem_ignore_the_key():
    cryptography = pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    assert cryptography
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "svc.lab.test")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0x1234).not_valid_before(T0).not_valid_after(at(90)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    bundle = key_pem + cert.public_bytes(serialization.Encoding.PEM).decode()
    dates = _x509.certificate_dates(bundle)
    assert dates == {"not_before": "2024-01-01T12:00:00Z", "not_after": policy.format_time(at(90)),
                     "subject": "CN=svc.lab.test", "serial": "1234"}
    assert _x509.certificate_dates(cert.public_bytes(serialization.Encoding.DER))["serial"] == "1234"
    assert _x509.certificate_dates(key_pem) is None
