# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One verification over HTTP, as verify_endpoint does it: its options, their checks, the probe
(the request, then for ``https`` the certificate) and the deadline loop, ending in the module's
result. The verify_endpoint module and the systemd_consumer action plugin (which verifies the
consumers it deployed, on the controller) both run it; the judging is ``_verify``'s.

    problem = problems(params)          # None, or {msg[, exception]}: the task fails with it
    result = run(params, warn=warn)     # verify_endpoint's result; "msg" when the check failed
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json as _json
import time

from ansible.module_utils.six.moves.urllib.parse import urlparse

from ansible_collections.credops.rotation.plugins.module_utils import _verify
from ansible_collections.credops.rotation.plugins.module_utils._errors import scrub
from ansible_collections.credops.rotation.plugins.module_utils._http import (
    HTTP_ARGSPEC, RETRY_STATUSES, request)
from ansible_collections.credops.rotation.plugins.module_utils._module import merge_options

MAX_DEADLINE = 86400
MIN_INTERVAL = 0.1
CERTIFICATE_OPTIONS = ("expect_serial", "expect_fingerprint", "min_valid_days")


def argument_spec():
    """verify_endpoint's options (documented in its DOCUMENTATION and the http doc fragment)."""
    return merge_options(dict(
        url=dict(type="str", required=True),
        method=dict(type="str", default="GET"),
        headers=dict(type="dict", no_log=True),
        credential=dict(type="str", no_log=False),
        consumer=dict(type="str"),
        secret=dict(type="str", no_log=True),
        secret_header=dict(type="str", default="Authorization", no_log=False),
        secret_format=dict(type="str", default="Bearer {secret}", no_log=False),
        body=dict(type="raw", no_log=True),
        body_format=dict(type="str", choices=["json", "form"], default="json"),
        status=dict(type="list", elements="int"),
        json=dict(type="dict"),
        expect_rejected=dict(type="bool", default=False),
        deadline=dict(type="float", default=60),
        interval=dict(type="float", default=2),
        expect_serial=dict(type="str"),
        expect_fingerprint=dict(type="str"),
        min_valid_days=dict(type="float"),
    ), HTTP_ARGSPEC)


def _missing_library(name):
    # what AnsibleModule's missing_required_lib says, without importing basic in the controller
    from ansible.module_utils.basic import missing_required_lib
    return missing_required_lib(name)


def problems(p):
    """Why the options cannot be checked, as ``{msg[, exception]}``, before anything is sent;
    None when they can."""
    # not mutually_exclusive=: an explicit expect_rejected=false with a status is fine
    if p["status"] and p["expect_rejected"]:
        return dict(msg="status and expect_rejected=true are mutually exclusive")
    if p["deadline"] < 0 or p["deadline"] > MAX_DEADLINE:
        return dict(msg="deadline must be between 0 and %d seconds, got %s" % (MAX_DEADLINE, p["deadline"]))
    if p["interval"] < MIN_INTERVAL:
        return dict(msg="interval must be at least %s seconds, got %s" % (MIN_INTERVAL, p["interval"]))
    if "{secret}" not in p["secret_format"]:
        return dict(msg="secret_format must contain {secret}, got %r" % p["secret_format"])
    parsed = urlparse(p["url"])
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return dict(msg="url must be an http:// or https:// URL with a host")
    if p["body"] is not None and p["body_format"] == "form" and not isinstance(p["body"], dict):
        return dict(msg="body must be a mapping with body_format=form")
    if p["json"] and not _verify.HAS_JMESPATH:
        return dict(msg=_missing_library("jmespath"), exception=str(_verify.JMESPATH_IMPORT_ERROR))
    cert_expected = any(p[k] is not None for k in CERTIFICATE_OPTIONS)
    if cert_expected and parsed.scheme != "https":
        return dict(msg="expect_serial, expect_fingerprint and min_valid_days need an https url")
    if cert_expected and parsed.scheme == "https" and not _verify.HAS_CRYPTOGRAPHY:
        return dict(msg=_missing_library("cryptography"), exception=str(_verify.CRYPTOGRAPHY_IMPORT_ERROR))
    return None


def request_headers(p):
    """The request's headers: O(headers), and O(secret) in its header."""
    headers = dict((str(k), v if isinstance(v, str) else str(v)) for k, v in (p["headers"] or {}).items())
    if p["secret"]:
        headers[p["secret_header"]] = p["secret_format"].replace("{secret}", p["secret"])
    return headers


def secret_values(params, headers):
    """Every value that must never show: the secret, its header value, header values."""
    values = set()
    if params.get("secret"):
        values.add(params["secret"])
    for value in headers.values():
        if isinstance(value, str) and len(value) >= 4:
            values.add(value)
    if isinstance(params.get("body"), dict):
        for value in params["body"].values():
            if isinstance(value, str) and len(value) >= 4:
                values.add(value)
    return sorted(values)


# The base of the backoff between the retries of one try (0.05-0.1 s, then 0.1-0.2 s, 0.2-0.4 s):
# the consumer was usually just restarted, and answers as soon as it listens. (The issuers' calls
# keep _http's 0.5 s: those go to a shared API, with other clients.)
BACKOFF = 0.1


def make_probe(params, headers, parsed, secrets, request_retries, end, clock, sleep):
    """One try: the request, then (https) the certificate in a handshake of our own."""
    body = params.get("body")
    json_body = body if body is not None and params["body_format"] == "json" else None
    form = body if body is not None and params["body_format"] == "form" else None
    tls = parsed.scheme == "https"

    def capped_sleep(seconds):
        # request()'s backoff never sleeps past the deadline
        sleep(max(0.0, min(seconds, end - clock())))

    def probe():
        attempt = _verify.Attempt()
        try:
            resp = request(params["method"].upper(), params["url"], headers=headers,
                           json_body=json_body, form=form, timeout=params["timeout"],
                           retries=request_retries, validate_certs=params["validate_certs"],
                           ca_path=params["ca_path"], backoff=BACKOFF, sleep=capped_sleep)
            attempt.status = resp.status
            if resp.body:
                try:
                    raw = resp.body.decode("utf-8") if isinstance(resp.body, bytes) else resp.body
                    attempt.data = _json.loads(raw)
                    attempt.is_json = True
                except ValueError:
                    attempt.is_json = False
        except Exception as exc:  # noqa: BLE001 - every failure to get an answer is "not yet"
            attempt.error = scrub(_describe(exc), secrets)
        if tls and _verify.HAS_CRYPTOGRAPHY:
            try:
                der = _verify.fetch_peer_certificate(
                    parsed.hostname, parsed.port or 443, timeout=params["timeout"],
                    validate_certs=params["validate_certs"], ca_path=params["ca_path"])
                attempt.certificate = _verify.describe_certificate(der)
            except Exception as exc:  # noqa: BLE001
                attempt.certificate_error = scrub(_describe(exc), secrets)
        return attempt

    return probe


def _describe(exc):
    reason = getattr(exc, "reason", None)
    text = str(reason if reason is not None else exc) or type(exc).__name__
    return "%s: %s" % (type(exc).__name__, text)


def run(p, warn=None, secrets=None, clock=time.monotonic, sleep=time.sleep):
    """Check until the expectation holds or the deadline passes: verify_endpoint's result, with
    ``msg`` (the failure message) when it did not hold. ``p`` passed ``problems``; ``secrets``:
    the values that must never show (``secret_values`` of ``p`` when not given)."""
    parsed = urlparse(p["url"])
    if parsed.scheme == "https" and not _verify.HAS_CRYPTOGRAPHY and warn is not None:
        warn("cryptography is not installed: the certificate is not described")
    headers = request_headers(p)
    if secrets is None:
        secrets = secret_values(p, headers)
    try:
        compiled = _verify.compile_checks(p["json"], credential=p["credential"])
    except _verify.VerifyError as exc:
        return dict(msg=scrub(str(exc), secrets), ok=False, changed=False)

    statuses = _verify.expected_statuses(p["status"], p["expect_rejected"])
    # a status the check expects is the answer, not something to retry inside one try
    request_retries = 0 if set(statuses) & set(RETRY_STATUSES) else p["retries"]
    tls = None
    if parsed.scheme == "https":
        tls = dict((k, p[k]) for k in CERTIFICATE_OPTIONS)
    end = clock() + p["deadline"]
    probe = make_probe(p, headers, parsed, secrets, request_retries, end, clock, sleep)

    def evaluate(attempt):
        return _verify.judge(attempt, statuses, spec=p["json"], compiled=compiled,
                             expect_rejected=p["expect_rejected"], tls=tls, secrets=secrets)

    outcome, attempts, elapsed = _verify.poll(probe, evaluate, p["deadline"], p["interval"],
                                              clock=clock, sleep=sleep)
    result = dict(changed=False, ok=outcome.ok, status=outcome.status, expected_status=statuses,
                  attempts=attempts, elapsed=elapsed, checks=outcome.checks, problems=outcome.problems)
    if outcome.certificate is not None:
        result["certificate"] = outcome.certificate
    if not outcome.ok:
        result["msg"] = _verify.failure_message(
            outcome, p["method"].upper(), scrub(p["url"], secrets), credential=p["credential"],
            consumer=p["consumer"], attempts=attempts, elapsed=elapsed,
            expect_rejected=p["expect_rejected"], secrets=secrets)
    return result
