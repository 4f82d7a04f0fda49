"""The verify logic without a network: statuses, JMESPath checks, certificates, the deadline loop."""
import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.credops.rotation.plugins.module_utils import _verify
from ansible_collections.credops.rotation.plugins.module_utils._poll import max_attempts
from ansible_collections.credops.rotation.plugins.module_utils._verify import (
    Attempt, VerifyError, certificate_problems, compile_checks, describe_certificate,
    expected_statuses, failure_message, judge, poll, redact, run_checks,
    status_matches, values_equal)
from tests.unit._fake_clock import FakeClock

SECRET = "sk_live_unit-secret-value-0123456789"


# --- statuses -------------------------------------------------------------------------

@pytest.mark.parametrize("status, rejected, expected", [
    (None, False, [200]),
    ([], False, [200]),
    (None, True, [401, 403]),
    (201, False, [201]),
    ("204", False, [204]),
    ([503], False, [503]),
    ([204, 200], False, [200, 204]),
    ([404], True, [404]),          # an explicit status wins
])
def test_expected_statuses(status, rejected, expected):
    assert expected_statuses(status, rejected) == expected


@pytest.mark.parametrize("actual, expected, ok", [
    (200, [200], True),
    (201, [200, 201], True),
    (503, [200], False),
    (401, [401, 403], True),
    (403, [401, 403], True),
    (200, [401, 403], False),
    (None, [200], False),
])
def test_status_matches(actual, expected, ok):
    assert status_matches(actual, expected) is ok


# --- JMESPath expectations ------------------------------------------------------------

@pytest.mark.parametrize("expected, actual, equal", [
    ("connected", "connected", True),
    ("connected", "rejected", False),
    (True, True, True),
    (True, 1, False),
    (1, True, False),
    (0, False, False),
    (False, None, False),
    ("3", 3, False),
    (3, "3", False),
    (3, 3.0, True),
    (None, None, True),
    (None, "", False),
    ([1, 2], [1, 2], True),
    ([1, 2], [2, 1], False),
    ([1, 2], (1, 2), True),
    ({"a": 1}, {"a": 1}, True),
    ({"a": 1}, {"a": 1, "b": 2}, False),
    ({"a": [True]}, {"a": [1]}, False),
    ({"a": {"b": "c"}}, {"a": {"b": "c"}}, True),
])
def test_values_equal_is_type_aware(expected, actual, equal):
    assert values_equal(expected, actual) is equal


HEALTH = {
    "status": "healthy",
    "payment_gateway": "connected",
    "count": 3,
    "ratio": 0.5,
    "degraded": False,
    "meta": {"version": "1.2", "region": {"name": "eu-1"}},
    "checks": [{"name": "db", "ok": True}, {"name": "payment", "ok": False}],
    "x-status": "green",
}


@pytest.mark.parametrize("expr, expected, ok, actual", [
    ("payment_gateway", "connected", True, "connected"),
    ("payment_gateway", "rejected", False, "connected"),
    ("meta.version", "1.2", True, "1.2"),
    ("meta.region.name", "eu-1", True, "eu-1"),
    ("count", 3, True, 3),
    ("count", "3", False, 3),
    ("ratio", 0.5, True, 0.5),
    ("degraded", False, True, False),
    ("degraded", 0, False, False),
    ("checks[?name=='payment'].ok | [0]", False, True, False),
    ("checks[*].name", ["db", "payment"], True, ["db", "payment"]),
    ("length(checks)", 2, True, 2),
    ("meta.region", {"name": "eu-1"}, True, {"name": "eu-1"}),
    ("missing", None, True, None),
    ("missing.deeper", "x", False, None),
    ('"x-status"', "green", True, "green"),
])
def test_run_checks(expr, expected, ok, actual):
    (check,) = run_checks(HEALTH, {expr: expected})
    assert check == {"expr": expr, "expected": expected, "actual": actual, "ok": ok}


def test_run_checks_keeps_order_and_handles_no_data():
    spec = {"status": "healthy", "payment_gateway": "connected"}
    assert [c["expr"] for c in run_checks(HEALTH, spec)] == ["status", "payment_gateway"]
    assert all(c["actual"] is None and not c["ok"] for c in run_checks(None, spec))


@pytest.mark.parametrize("bad", ["checks[?name=='x'", "a..b", "[?", "foo bar"])
def test_malformed_jmespath_fails_up_front_naming_it(bad):
    with pytest.raises(VerifyError) as err:
        compile_checks({bad: 1}, credential="payment-gateway-api")
    text = str(err.value)
    assert repr(bad) in text and "credential 'payment-gateway-api'" in text and "verify" in text


def test_json_spec_must_be_a_mapping():
    with pytest.raises(VerifyError):
        compile_checks(["payment_gateway"])


@pytest.mark.parametrize("value, expected", [
    (SECRET, "********"),
    ("Bearer " + SECRET, "********"),
    ("harmless", "harmless"),
    ({"key": SECRET, "n": 1}, {"key": "********", "n": 1}),
    ([{"a": ["x", SECRET]}], [{"a": ["x", "********"]}]),
    (42, 42),
    (None, None),
])
def test_redact(value, expected):
    assert redact(value, [SECRET]) == expected


def test_checks_never_carry_a_secret_from_the_answer():
    data = {"echo": {"api_key": SECRET}, "ok": True}
    checks = run_checks(data, {"echo.api_key": "x", "echo": {}}, secrets=[SECRET])
    assert SECRET not in repr(checks)


# --- judging one attempt --------------------------------------------------------------

def test_judge_ok():
    att = Attempt(status=200, data=HEALTH, is_json=True)
    out = judge(att, [200], spec={"payment_gateway": "connected"},
                compiled=compile_checks({"payment_gateway": "connected"}))
    assert out.ok and out.problems == [] and out.checks[0]["ok"]


@pytest.mark.parametrize("attempt, statuses, spec, rejected, kind, fragment", [
    (Attempt(status=503, data={"payment_gateway": "rejected"}, is_json=True), [200],
     {"payment_gateway": "connected"}, False, "status", "expected status 200, got 503"),
    (Attempt(status=200, data={"payment_gateway": "rejected"}, is_json=True), [200],
     {"payment_gateway": "connected"}, False, "json", 'payment_gateway: expected "connected", got "rejected"'),
    (Attempt(status=200, data=None, is_json=False), [200],
     {"payment_gateway": "connected"}, False, "json", "expected a JSON answer"),
    (Attempt(status=200), [401, 403], None, True, "accepted", "it is still accepted"),
    (Attempt(status=404), [401, 403], None, True, "status", "expected status one of 401, 403, got 404"),
    (Attempt(error="URLError: [Errno 111] Connection refused"), [200], None, False,
     "connection", "no HTTP answer"),
    (Attempt(error="URLError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), [200],
     None, False, "tls", "CERTIFICATE_VERIFY_FAILED"),
])
def test_judge_failures(attempt, statuses, spec, rejected, kind, fragment):
    out = judge(attempt, statuses, spec=spec, compiled=compile_checks(spec),
                expect_rejected=rejected)
    assert not out.ok and out.kind == kind
    assert fragment in "; ".join(out.problems)


@pytest.mark.parametrize("status, ok", [(401, True), (403, True), (200, False), (500, False)])
def test_judge_expect_rejected(status, ok):
    assert judge(Attempt(status=status), expected_statuses(None, True), expect_rejected=True).ok is ok


def test_judge_redacts_secret_from_error_text():
    out = judge(Attempt(error="boom near " + SECRET), [200], secrets=[SECRET])
    assert SECRET not in "".join(out.problems)


# --- certificates ---------------------------------------------------------------------

def make_cert(serial=0x0A1B2C, days=30, cn="svc.lab.test"):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=days))
            .sign(key, hashes.SHA256()))
    return cert, cert.public_bytes(serialization.Encoding.DER)


def test_describe_certificate():
    cert, der = make_cert(serial=0x0A1B2C, days=30)
    info = describe_certificate(der)
    assert info["serial"] == "0a1b2c"
    assert info["serial_colon"] == "0a:1b:2c"
    assert int(info["serial"], 16) == cert.serial_number
    assert info["sha256_fingerprint"] == hashlib.sha256(der).hexdigest()
    assert info["not_after"] == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert info["not_before"] == cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert info["subject"] == info["issuer"] == "CN=svc.lab.test"
    assert 29.9 < info["days_left"] <= 30


@pytest.mark.parametrize("kwargs, problems", [
    ({}, 0),
    ({"expect_serial": "0a1b2c"}, 0),
    ({"expect_serial": "0A:1B:2C"}, 0),
    ({"expect_serial": "a1b2c"}, 0),
    ({"expect_serial": "0x0a1b2c"}, 0),
    ({"expect_serial": "0a1b2d"}, 1),
    ({"expect_fingerprint": "FP"}, 0),
    ({"expect_fingerprint": "sha256:FP"}, 0),
    ({"expect_fingerprint": "COLONFP"}, 0),
    ({"expect_fingerprint": "00" * 32}, 1),
    ({"min_valid_days": 10}, 0),
    ({"min_valid_days": 31}, 1),
    ({"expect_serial": "ff", "min_valid_days": 31}, 2),
])
def test_certificate_problems(kwargs, problems):
    _cert, der = make_cert(serial=0x0A1B2C, days=30)
    info = describe_certificate(der)
    fp = info["sha256_fingerprint"]
    if kwargs.get("expect_fingerprint") == "FP":
        kwargs["expect_fingerprint"] = fp.upper()
    elif kwargs.get("expect_fingerprint") == "sha256:FP":
        kwargs["expect_fingerprint"] = "sha256:" + fp
    elif kwargs.get("expect_fingerprint") == "COLONFP":
        kwargs["expect_fingerprint"] = ":".join(fp[i:i + 2] for i in range(0, len(fp), 2))
    assert len(certificate_problems(info, **kwargs)) == problems


def test_judge_certificate_mismatch_is_its_own_kind():
    _cert, der = make_cert(serial=0x10)
    att = Attempt(status=200, certificate=describe_certificate(der))
    out = judge(att, [200], tls={"expect_serial": "11", "expect_fingerprint": None,
                                 "min_valid_days": None})
    assert not out.ok and out.kind == "certificate"
    assert "expected certificate serial 11, got 10" in out.problems[0]


# --- the deadline loop ----------------------------------------------------------------

class Outcome:
    def __init__(self, ok):
        self.ok = ok


def scripted(results, clock=None, cost=0.0):
    """A probe returning results in turn (the last repeats), each costing `cost` seconds."""
    calls = []

    def probe():
        calls.append(clock.now if clock else None)
        if clock:
            clock.now += cost
        return results[min(len(calls), len(results)) - 1]
    return probe, calls


@pytest.mark.parametrize("results, deadline, interval, attempts, elapsed, ok", [
    ([True], 60, 2, 1, 0.0, True),
    ([False, False, True], 60, 2, 3, 4.0, True),
    ([False], 10, 2, 6, 10.0, False),          # tries at 0, 2, 4, 6, 8, 10
    ([False], 5, 2, 4, 5.0, False),            # 0, 2, 4, then once more at the deadline
    ([False], 0, 2, 1, 0.0, False),            # deadline 0: one try
    ([False], 3, 10, 2, 3.0, False),           # interval past the deadline: now and at it
    ([False] * 5 + [True], 60, 1, 6, 5.0, True),
])
def test_poll_with_fake_clock(results, deadline, interval, attempts, elapsed, ok):
    clock = FakeClock()
    probe, calls = scripted(results)
    outcome, n, took = poll(probe, Outcome, deadline, interval, clock=clock, sleep=clock.sleep)
    assert (outcome.ok, n, took) == (ok, attempts, elapsed)
    assert len(calls) == attempts
    assert sum(clock.sleeps) == pytest.approx(elapsed)


def test_poll_slow_probes_count_against_the_deadline():
    clock = FakeClock()
    probe, calls = scripted([False], clock=clock, cost=3.0)
    outcome, n, took = poll(probe, Outcome, 10, 2, clock=clock, sleep=clock.sleep)
    # tries start at 0, 5, 10: each costs 3 s, then 2 s of sleep
    assert not outcome.ok and [c - 1000 for c in calls] == [0, 5, 10] and took == 13.0


def test_poll_is_bounded_even_if_the_clock_stands_still():
    probe, calls = scripted([False])
    outcome, n, _took = poll(probe, Outcome, 10, 2, clock=lambda: 0.0, sleep=lambda s: None)
    assert n == max_attempts(10, 2) == 6 and len(calls) == 6


# --- the message ----------------------------------------------------------------------

def test_failure_message_names_everything_but_the_secret():
    att = Attempt(status=503, data={"payment_gateway": "rejected"}, is_json=True)
    spec = {"payment_gateway": "connected"}
    out = judge(att, [200], spec=spec, compiled=compile_checks(spec))
    msg = failure_message(out, "GET", "http://web1:8080/health?k=" + SECRET,
                          credential="payment-gateway-api", consumer="web-app", attempts=3,
                          elapsed=4.2, secrets=[SECRET])
    assert "credential 'payment-gateway-api'" in msg and "consumer 'web-app'" in msg
    assert "expected status 200, got 503" in msg
    assert 'payment_gateway: expected "connected", got "rejected"' in msg
    assert "3 attempts over 4.2s" in msg and "Fix:" in msg and "deploy step" in msg
    assert SECRET not in msg


@pytest.mark.parametrize("attempt, rejected, fix", [
    (Attempt(status=200), True, "revoked at the issuer"),
    (Attempt(status=404), True, "neither accepted nor rejected"),
    (Attempt(error="URLError: refused"), False, "running and reachable"),
    (Attempt(error="SSLError: certificate verify failed"), False, "ca_path"),
])
def test_failure_message_fix_hints(attempt, rejected, fix):
    statuses = expected_statuses(None, rejected)
    out = judge(attempt, statuses, expect_rejected=rejected)
    msg = failure_message(out, "GET", "http://127.0.0.1:1/v1/test", credential="c",
                          expect_rejected=rejected)
    assert fix in msg


def test_module_helpers_no_network(monkeypatch):
    """The module's probe turns request() errors into an attempt error, scrubbed."""
    from ansible_collections.credops.rotation.plugins.module_utils import _verify_run as mod

    def boom(*args, **kwargs):
        raise OSError("refused while sending " + SECRET)
    monkeypatch.setattr(mod, "request", boom)
    params = {"body": None, "body_format": "json", "method": "get", "url": "http://127.0.0.1:9/",
              "timeout": 1, "validate_certs": True, "ca_path": None}
    from urllib.parse import urlparse
    probe = mod.make_probe(params, {}, urlparse(params["url"]), [SECRET], 0, 0, lambda: 0, lambda s: None)
    att = probe()
    assert att.status is None and "refused" in att.error and SECRET not in att.error
    assert mod.secret_values({"secret": SECRET, "body": None},
                             {"Authorization": "Bearer " + SECRET, "X-N": "1"}) == \
        sorted([SECRET, "Bearer " + SECRET])


def test_a_consumer_not_listening_yet_is_tried_again_within_a_tenth_of_a_second():
    # a consumer just restarted refuses connections until it listens: one try's retries wait
    # 0.05-0.1 s, 0.1-0.2 s, 0.2-0.4 s (the issuers' calls keep 0.5 s, 1 s, 2 s)
    import socket
    from urllib.parse import urlparse
    from ansible_collections.credops.rotation.plugins.module_utils import _verify_run as mod
    with socket.socket() as sock:  # a port of this host that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    params = {"body": None, "body_format": "json", "method": "get", "url": "http://127.0.0.1:%d/health" % port,
              "timeout": 1, "validate_certs": True, "ca_path": None}
    waits = []
    probe = mod.make_probe(params, {}, urlparse(params["url"]), [], 3, 100.0, lambda: 0.0, waits.append)
    attempt = probe()
    assert attempt.status is None and "Connection refused" in attempt.error
    assert len(waits) == 3
    for wait, top in zip(waits, (0.1, 0.2, 0.4)):
        assert top / 2 <= wait <= top


def test_jmespath_flag():
    assert _verify.HAS_JMESPATH and _verify.HAS_CRYPTOGRAPHY
