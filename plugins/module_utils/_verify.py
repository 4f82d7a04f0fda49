# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Does a consumer work with a credential? The logic of verify_endpoint, as pure functions.

- expected statuses (a list, or 401/403 when the credential must be rejected);
- JMESPath expectations on the JSON answer, compared type-aware (``true`` is not ``1``);
- the presented TLS certificate, described and checked (serial, fingerprint, days left);
- the deadline loop (``_poll.poll_until``: injectable clock and sleep, bounded by time AND attempt count);
- the failure message: expected vs got, credential, consumer, fix; never a secret.

Response bodies never leave this file: only evaluated JMESPath results do, and those are
redacted of every secret value the caller names.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import ssl
import time
from collections import namedtuple

try:
    import jmespath
    from jmespath.exceptions import JMESPathError
    HAS_JMESPATH = True
    JMESPATH_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - the module reports missing_required_lib
    HAS_JMESPATH = False
    JMESPATH_IMPORT_ERROR = _exc

    class JMESPathError(Exception):
        pass

from ansible_collections.credops.rotation.plugins.module_utils import _x509
from ansible_collections.credops.rotation.plugins.module_utils._poll import poll_until
from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError, scrub
from ansible_collections.credops.rotation.plugins.module_utils._time import format_time, now as utc_now

CRYPTOGRAPHY_IMPORT_ERROR = _x509.import_error()
HAS_CRYPTOGRAPHY = CRYPTOGRAPHY_IMPORT_ERROR is None

REJECTED_STATUSES = (401, 403)
DEFAULT_STATUSES = (200,)
REDACTED = "********"
MAX_SHOWN = 200


class VerifyError(RotationError):
    """Bad verify input (a malformed JMESPath, ...), found before anything is sent."""


# --- statuses -------------------------------------------------------------------------

def expected_statuses(status=None, expect_rejected=False):
    """The statuses that count as success: status (int or list), else 401/403 when the
    credential must be rejected, else 200."""
    if status is None or status == []:
        return list(REJECTED_STATUSES if expect_rejected else DEFAULT_STATUSES)
    if isinstance(status, (list, tuple, set)):
        return sorted(int(s) for s in status)
    return [int(status)]


def status_matches(actual, expected):
    return actual is not None and int(actual) in expected


# --- JMESPath expectations ------------------------------------------------------------

def compile_checks(spec, credential=None):
    """{expression: compiled} for every key of spec; a malformed one fails up front."""
    if not spec:
        return {}
    if not isinstance(spec, dict):
        raise VerifyError("json must be a mapping of JMESPath expression to expected value, got %s"
                          % type(spec).__name__, credential=credential, step="verify")
    if not HAS_JMESPATH:
        raise VerifyError("the jmespath Python library is needed for json checks",
                          credential=credential, step="verify", fix="pip install jmespath")
    compiled = {}
    for expr in spec:
        try:
            compiled[expr] = jmespath.compile(str(expr))
        except JMESPathError as exc:
            raise VerifyError("json: %r is not a valid JMESPath expression (%s)"
                              % (expr, str(exc).splitlines()[0] if str(exc) else type(exc).__name__),
                              credential=credential, step="verify",
                              fix="quote field names with special characters, e.g. '\"x-status\"'")
    return compiled


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def values_equal(expected, actual):
    """JSON equality, type-aware: true != 1, "3" != 3, 3 == 3.0; recursive on lists/dicts."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if _is_number(expected) or _is_number(actual):
        return _is_number(expected) and _is_number(actual) and expected == actual
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, str) or isinstance(actual, str):
        return isinstance(expected, str) and isinstance(actual, str) and expected == actual
    if isinstance(expected, dict) or isinstance(actual, dict):
        return (isinstance(expected, dict) and isinstance(actual, dict)
                and set(expected) == set(actual)
                and all(values_equal(expected[k], actual[k]) for k in expected))
    if isinstance(expected, (list, tuple)) or isinstance(actual, (list, tuple)):
        return (isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple))
                and len(expected) == len(actual)
                and all(values_equal(e, a) for e, a in zip(expected, actual)))
    return expected == actual


def redact(value, secrets):
    """value with every secret (and every string containing one) replaced by ********."""
    secrets = [s for s in (secrets or ()) if isinstance(s, str) and s]
    if not secrets:
        return value
    if isinstance(value, str):
        return REDACTED if any(s in value for s in secrets) else value
    if isinstance(value, dict):
        return dict((redact(k, secrets), redact(v, secrets)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [redact(v, secrets) for v in value]
    return value


def run_checks(data, spec, compiled=None, secrets=None):
    """[{expr, expected, actual, ok}] for every expectation in spec, against data."""
    compiled = compiled if compiled is not None else compile_checks(spec)
    results = []
    for expr in spec or {}:
        expected = spec[expr]
        actual = compiled[expr].search(data) if data is not None else None
        results.append({"expr": expr, "expected": redact(expected, secrets),
                        "actual": redact(actual, secrets), "ok": values_equal(expected, actual)})
    return results


def show(value):
    """A value for a message: JSON (strings quoted, null, true), shortened."""
    try:
        text = json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."


# --- certificates ---------------------------------------------------------------------

def normalize_hex(value):
    """Serials / fingerprints compare as bare lower-case hex: no colons, no 0x, no
    leading zeros (for serials), no 'sha256:' prefix."""
    text = str(value).strip().lower()
    for prefix in ("sha256:", "sha256=", "0x"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text.replace(":", "").replace(" ", "").replace("-", "")


def _serial_key(value):
    return normalize_hex(value).lstrip("0") or "0"


def describe_certificate(der, now=None):
    """The facts of a DER certificate a person checks: nothing secret in a certificate."""
    cert = _x509.load(der)
    now = now or utc_now()
    not_before, not_after = _x509.validity(cert)
    serial = _x509.serial_hex(cert, even=True)
    return {
        "serial": serial,
        "serial_colon": _x509.colon_hex(serial),
        "not_before": format_time(not_before),
        "not_after": format_time(not_after),
        "days_left": round((not_after - now).total_seconds() / 86400.0, 2),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "sha256_fingerprint": _x509.sha256_fingerprint(der),
    }


def certificate_problems(cert, expect_serial=None, expect_fingerprint=None, min_valid_days=None):
    """What is wrong with a described certificate, as messages (empty: all good)."""
    problems = []
    if expect_serial and _serial_key(expect_serial) != _serial_key(cert["serial"]):
        problems.append("expected certificate serial %s, got %s"
                        % (normalize_hex(expect_serial), cert["serial"]))
    if expect_fingerprint and normalize_hex(expect_fingerprint) != cert["sha256_fingerprint"]:
        problems.append("expected certificate sha256 fingerprint %s, got %s"
                        % (normalize_hex(expect_fingerprint), cert["sha256_fingerprint"]))
    if min_valid_days is not None and cert["days_left"] < min_valid_days:
        problems.append("expected the certificate to be valid for at least %s more days, it "
                        "expires %s (%s days left)" % (min_valid_days, cert["not_after"], cert["days_left"]))
    return problems


def fetch_peer_certificate(host, port, timeout=10, validate_certs=True, ca_path=None):
    """DER of the certificate the server presents, from a handshake of our own.

    With validate_certs the handshake verifies the chain (against ca_path when given, the
    system store otherwise) and the host name, so a certificate we report is one we trust.
    """
    if validate_certs:
        ctx = ssl.create_default_context(cafile=ca_path)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with ctx.wrap_socket(sock, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True)


# --- one attempt, judged ---------------------------------------------------------------

class Attempt(object):
    """What one try saw. data is the parsed JSON body, which never leaves this module."""

    def __init__(self, status=None, data=None, is_json=False, error=None, certificate=None,
                 certificate_error=None):
        self.status = status
        self.data = data
        self.is_json = is_json
        self.error = error
        self.certificate = certificate
        self.certificate_error = certificate_error


class Outcome(namedtuple("Outcome", ["ok", "problems", "checks", "kind", "status", "certificate"])):
    """The judgement of one attempt: ok, problems (messages), checks, kind (for the fix)."""
    __slots__ = ()

    def __new__(cls, ok, problems, checks, kind, status=None, certificate=None):
        return super(Outcome, cls).__new__(cls, ok, problems, checks, kind, status, certificate)


def judge(attempt, statuses, spec=None, compiled=None, expect_rejected=False, tls=None,
          secrets=None):
    """Outcome of an attempt. tls: None for plain http, else dict(expect_serial,
    expect_fingerprint, min_valid_days)."""
    problems, kinds, checks = [], [], []
    if attempt.error is not None:
        problems.append("no HTTP answer: %s" % scrub(attempt.error, secrets))
        kinds.append("tls" if _looks_tls(attempt.error) else "connection")
    else:
        if not status_matches(attempt.status, statuses):
            if expect_rejected and 200 <= attempt.status < 300:
                problems.append("expected the credential to be rejected (status %s), got %s: it "
                                "is still accepted" % (_statuses_text(statuses), attempt.status))
                kinds.append("accepted")
            else:
                problems.append("expected status %s, got %s" % (_statuses_text(statuses), attempt.status))
                kinds.append("status")
        if spec:
            checks = run_checks(attempt.data if attempt.is_json else None, spec, compiled, secrets)
            if not attempt.is_json:
                problems.append("expected a JSON answer for the json checks, got none")
                kinds.append("json")
            else:
                for check in checks:
                    if not check["ok"]:
                        problems.append("%s: expected %s, got %s"
                                        % (check["expr"], show(check["expected"]), show(check["actual"])))
                        kinds.append("json")
    if tls is not None:
        if attempt.certificate_error is not None:
            if attempt.error is None:   # the same failure is already reported once
                problems.append("TLS handshake failed: %s" % scrub(attempt.certificate_error, secrets))
                kinds.append("tls")
        elif attempt.certificate is not None:
            cert_problems = certificate_problems(attempt.certificate, **tls)
            problems.extend(cert_problems)
            kinds.extend(["certificate"] * len(cert_problems))
    return Outcome(not problems, problems, checks, kinds[0] if kinds else None,
                   status=attempt.status, certificate=attempt.certificate)


def _looks_tls(text):
    text = str(text).lower()
    return "certificate" in text or "ssl" in text or "tls" in text


def _statuses_text(statuses):
    return statuses[0] if len(statuses) == 1 else "one of " + ", ".join(str(s) for s in statuses)


# --- the deadline loop ----------------------------------------------------------------

def poll(probe, evaluate, deadline, interval, clock=time.monotonic, sleep=time.sleep):
    """Call probe() and evaluate() its result until an outcome is ok or the deadline passes.

    Returns (last outcome, attempts, elapsed seconds). The last try is made at the deadline.
    """
    polled = poll_until(lambda: evaluate(probe()), lambda outcome: outcome.ok, deadline, interval,
                        clock=clock, sleep=sleep)
    return polled.value, polled.attempts, round(polled.elapsed, 3)


# --- the message a person reads -------------------------------------------------------

FIXES = {
    "connection": "check that consumer {consumer} is running and reachable from the controller "
                  "at {url} (service started, right host and port, firewall).",
    "tls": "set ca_path to the CA bundle that signed the server's certificate, and check that "
           "the host name in url is one the certificate names.",
    "certificate": "the server presents another certificate than expected: check that the new "
                   "certificate was deployed to {consumer} and the service reloaded it.",
    "accepted": "the old value still works: check that it was revoked at the issuer (revoke "
                "step, the right key id) and allow for the issuer's propagation delay (deadline).",
    "status": "check that consumer {consumer} picked up the new value (deploy step: env file or "
              "Kubernetes Secret written, service restarted or rollout finished) and its logs; "
              "check method, url and headers of the verify block.",
    "json": "check that consumer {consumer} picked up the new value (deploy step) and its logs; "
            "check the JMESPath expressions of the verify block against the endpoint's answer.",
}
FIXES_REJECTED = {
    "status": "the endpoint neither accepted nor rejected the credential: check method and url "
              "of the test (it must answer 401/403 to a dead credential).",
}


def failure_message(outcome, method, url, credential=None, consumer=None, attempts=1,
                    elapsed=0.0, expect_rejected=False, secrets=None):
    """One line: who, what was expected, what came back, after how long, and the fix."""
    who = ("consumer '%s' " % consumer) if consumer else ""
    what = "%s%s %s" % (who, method, url)
    kind = outcome.kind or "status"
    fix = (FIXES_REJECTED.get(kind) if expect_rejected else None) or FIXES[kind]
    fix = fix.format(consumer=("'%s'" % consumer) if consumer else "", url=url).replace("  ", " ")
    text = "%s: %s (%d attempt%s over %.1fs)" % (
        what, "; ".join(outcome.problems), attempts, "" if attempts == 1 else "s", elapsed)
    err = RotationError(scrub(text, secrets), credential=credential, step="verify",
                        fix=scrub(fix, secrets))
    return err.render()
