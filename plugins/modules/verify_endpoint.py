#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: verify_endpoint
short_description: Prove over HTTP that a consumer works with a credential, or that an old one is dead
version_added: 0.1.0
description:
  - Sends a request to a consumer's health endpoint (or an issuer's test endpoint) and checks
    the answer - the status, JMESPath expectations on its JSON, and for C(https) URLs the
    certificate the server presents - retrying until the expectation holds or O(deadline)
    passes. This is the verify step of a rotation, the C(verify:) block of a consumer in the
    inventory.
  - With O(expect_rejected=true) it proves the opposite - that a credential is refused with
    C(401) or C(403) - the evidence that an old key is revoked.
  - The credential under test goes in O(secret) (sent as O(secret_header), formatted by
    O(secret_format)) or in O(headers); both are C(no_log). The response body is never
    returned, only the results of the JMESPath expressions, with any secret value redacted.
  - The failure message says what was expected and what came back, names the credential and
    the consumer, and says what to fix. It never carries a secret.
author: credops.rotation maintainers (@credops)
extends_documentation_fragment:
  - credops.rotation.http
attributes:
  check_mode:
    support: full
    description: The module only reads; it sends the same request in check mode, and never reports a change.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
requirements:
  - jmespath (for O(json))
  - cryptography (to describe and check the certificate of C(https) URLs)
options:
  url:
    description:
      - The URL to check, C(http) or C(https).
    type: str
    required: true
  method:
    description:
      - The HTTP method.
    type: str
    default: GET
  headers:
    description:
      - Request headers. Values may carry the credential under test, so the whole option is
        C(no_log) - prefer O(secret) for the credential, which keeps it out of O(headers).
    type: dict
  credential:
    description:
      - The name of the credential under test, for messages (never its value).
    type: str
  consumer:
    description:
      - The name of the consumer checked (the C(name) of its entry in the inventory), for messages.
    type: str
  secret:
    description:
      - The credential value to send, in header O(secret_header) formatted by O(secret_format).
      - Its value is redacted from every result and message. It replaces a header of the
        same name in O(headers).
    type: str
  secret_header:
    description:
      - The header that carries O(secret).
    type: str
    default: Authorization
  secret_format:
    description:
      - The value of O(secret_header); C({secret}) is replaced by O(secret).
    type: str
    default: "Bearer {secret}"
  body:
    description:
      - A request body, encoded as O(body_format). C(no_log), as bodies may carry credentials.
    type: raw
  body_format:
    description:
      - How O(body) is encoded.
    type: str
    choices: [json, form]
    default: json
  status:
    description:
      - The status, or list of statuses, that count as success.
      - When not set, C(200) - or C(401)/C(403) with O(expect_rejected=true).
    type: list
    elements: int
  json:
    description:
      - Expectations on the JSON answer. Each key is a JMESPath expression, each value the
        expected result, compared as JSON values (C(true) is not C(1), C("3") is not C(3); a
        list or mapping must match as a whole).
      - A malformed expression fails before any request is sent.
    type: dict
  expect_rejected:
    description:
      - The request must be refused with C(401) or C(403) (or one of O(status), when given) -
        proof that the credential is dead. An accepted (2xx) answer is retried until
        O(deadline), for issuers that take a while to propagate a revocation.
    type: bool
    default: false
  deadline:
    description:
      - Seconds to keep trying until the expectation holds. C(0) tries once.
      - The last try starts at the deadline, so the module may take up to one request
        (O(timeout), with O(retries)) longer.
    type: float
    default: 60
  interval:
    description:
      - Seconds between tries.
    type: float
    default: 2
  expect_serial:
    description:
      - For C(https) - the serial the presented certificate must have, in hex (colons and
        leading zeros do not matter).
    type: str
  expect_fingerprint:
    description:
      - For C(https) - the SHA-256 fingerprint the presented certificate must have, in hex
        (colons, case and a C(sha256:) prefix do not matter).
    type: str
  min_valid_days:
    description:
      - For C(https) - the presented certificate must be valid for at least this many more days.
    type: float
notes:
  - The O(retries) of one try (connection errors, 429 and 5xx, with backoff and
    C(Retry-After)) are not made when the status is one the check expects, and their waits
    never pass the deadline.
  - For C(https), the certificate is read in a separate TLS handshake of the module's own,
    verified like the request (O(validate_certs), O(ca_path)).
seealso:
  - module: credops.rotation.issue_key
  - module: credops.rotation.revoke_key
"""

EXAMPLES = r"""
- name: The consumer works with the new key
  credops.rotation.verify_endpoint:
    url: "http://{{ inventory_hostname }}:8080/health/payment-integration"
    credential: payment-gateway-api
    consumer: web-app
    status: 200
    json:
      payment_gateway: connected
    deadline: 120

- name: The old key is dead at the issuer
  credops.rotation.verify_endpoint:
    url: https://api.provider.example.com/v1/test
    credential: payment-gateway-api
    secret: "{{ old_api_key }}"
    secret_header: Authorization
    secret_format: "Bearer {secret}"
    expect_rejected: true
    deadline: 300
    interval: 10

- name: The service presents the renewed certificate, valid for 60 more days
  credops.rotation.verify_endpoint:
    url: https://mobile.example.org/health/external-services
    consumer: mobile-backend
    ca_path: /etc/pki/internal-ca.pem
    expect_serial: "{{ new_cert.serial }}"
    min_valid_days: 60
    json:
      "checks[?name=='payment'].ok | [0]": true
      "length(backends)": 3
"""

RETURN = r"""
ok:
  description: Whether the expectation held.
  returned: always
  type: bool
  sample: true
status:
  description: The HTTP status of the last try (null when no answer came).
  returned: always
  type: int
  sample: 200
expected_status:
  description: The statuses that counted as success.
  returned: always
  type: list
  elements: int
  sample: [200]
attempts:
  description: How many tries were made.
  returned: always
  type: int
  sample: 3
elapsed:
  description: Seconds from the first try to the end.
  returned: always
  type: float
  sample: 4.02
checks:
  description:
    - The JMESPath expectations of the last try that got an answer, each with its result.
      Results are redacted (C(********)) where they hold a secret value. The response body
      itself is never returned.
  returned: always
  type: list
  elements: dict
  contains:
    expr:
      description: The JMESPath expression.
      type: str
    expected:
      description: The expected result.
      type: raw
    actual:
      description: What the expression gave (null when it matched nothing or the answer was not JSON).
      type: raw
    ok:
      description: Whether actual equals expected.
      type: bool
  sample: [{expr: payment_gateway, expected: connected, actual: connected, ok: true}]
problems:
  description: What did not hold on the last try (empty when ok).
  returned: always
  type: list
  elements: str
  sample: ["expected status 200, got 503"]
certificate:
  description: The certificate the server presented on the last try.
  returned: for https URLs, when the handshake succeeded
  type: dict
  contains:
    serial:
      description: The serial number, lower-case hex.
      type: str
      sample: 3a0f9c2e
    serial_colon:
      description: The serial number, colon-separated hex (as Vault PKI writes it).
      type: str
      sample: "3a:0f:9c:2e"
    not_before:
      description: Start of validity, ISO-8601 UTC.
      type: str
      sample: "2024-08-15T10:30:00Z"
    not_after:
      description: End of validity, ISO-8601 UTC.
      type: str
      sample: "2024-11-13T10:30:00Z"
    days_left:
      description: Days until not_after.
      type: float
      sample: 89.5
    subject:
      description: The subject, RFC 4514.
      type: str
      sample: CN=mobile.example.org
    issuer:
      description: The issuer, RFC 4514.
      type: str
      sample: CN=Internal CA
    sha256_fingerprint:
      description: SHA-256 of the DER certificate, lower-case hex.
      type: str
"""

import json as _json
import time

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.six.moves.urllib.parse import urlparse

from ansible_collections.credops.rotation.plugins.module_utils import _verify
from ansible_collections.credops.rotation.plugins.module_utils._errors import scrub
from ansible_collections.credops.rotation.plugins.module_utils._http import (
    HTTP_ARGSPEC, RETRY_STATUSES, request)
from ansible_collections.credops.rotation.plugins.module_utils._module import RotationModule, merge_options

MAX_DEADLINE = 86400
MIN_INTERVAL = 0.1


def argument_spec():
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
                           ca_path=params["ca_path"], sleep=capped_sleep)
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


def main():
    module = RotationModule(argument_spec())
    p = module.params
    # not mutually_exclusive=: an explicit expect_rejected=false with a status is fine
    if p["status"] and p["expect_rejected"]:
        module.fail_json(msg="status and expect_rejected=true are mutually exclusive")
    if p["deadline"] < 0 or p["deadline"] > MAX_DEADLINE:
        module.fail_json(msg="deadline must be between 0 and %d seconds, got %s" % (MAX_DEADLINE, p["deadline"]))
    if p["interval"] < MIN_INTERVAL:
        module.fail_json(msg="interval must be at least %s seconds, got %s" % (MIN_INTERVAL, p["interval"]))
    if "{secret}" not in p["secret_format"]:
        module.fail_json(msg="secret_format must contain {secret}, got %r" % p["secret_format"])
    parsed = urlparse(p["url"])
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        module.fail_json(msg="url must be an http:// or https:// URL with a host")
    if p["body"] is not None and p["body_format"] == "form" and not isinstance(p["body"], dict):
        module.fail_json(msg="body must be a mapping with body_format=form")
    if p["json"] and not _verify.HAS_JMESPATH:
        module.fail_json(msg=missing_required_lib("jmespath"),
                         exception=str(_verify.JMESPATH_IMPORT_ERROR))
    cert_expected = any(p[k] is not None for k in ("expect_serial", "expect_fingerprint", "min_valid_days"))
    if cert_expected and parsed.scheme != "https":
        module.fail_json(msg="expect_serial, expect_fingerprint and min_valid_days need an https url")
    if parsed.scheme == "https" and not _verify.HAS_CRYPTOGRAPHY:
        if cert_expected:
            module.fail_json(msg=missing_required_lib("cryptography"),
                             exception=str(_verify.CRYPTOGRAPHY_IMPORT_ERROR))
        module.warn("cryptography is not installed: the certificate is not described")

    headers = dict((str(k), v if isinstance(v, str) else str(v)) for k, v in (p["headers"] or {}).items())
    if p["secret"]:
        headers[p["secret_header"]] = p["secret_format"].replace("{secret}", p["secret"])
    secrets = secret_values(p, headers)
    for value in secrets:
        module.no_log_values.add(value)

    compiled, error = None, None
    try:
        compiled = _verify.compile_checks(p["json"], credential=p["credential"])
    except _verify.VerifyError as exc:
        error = scrub(str(exc), secrets)
    if error:
        module.fail_json(msg=error, ok=False, changed=False)

    statuses = _verify.expected_statuses(p["status"], p["expect_rejected"])
    # a status the check expects is the answer, not something to retry inside one try
    request_retries = 0 if set(statuses) & set(RETRY_STATUSES) else p["retries"]
    tls = None
    if parsed.scheme == "https":
        tls = dict(expect_serial=p["expect_serial"], expect_fingerprint=p["expect_fingerprint"],
                   min_valid_days=p["min_valid_days"])
    clock, sleep = time.monotonic, time.sleep
    end = clock() + p["deadline"]
    probe = make_probe(p, headers, parsed, secrets, request_retries, end, clock, sleep)

    def evaluate(attempt):
        return _verify.judge(attempt, statuses, spec=p["json"], compiled=compiled,
                             expect_rejected=p["expect_rejected"], tls=tls, secrets=secrets)

    outcome, attempts, elapsed = _verify.poll(probe, evaluate, p["deadline"], p["interval"],
                                              clock=clock, sleep=sleep)
    result = dict(
        changed=False,
        ok=outcome.ok,
        status=outcome.status,
        expected_status=statuses,
        attempts=attempts,
        elapsed=elapsed,
        checks=outcome.checks,
        problems=outcome.problems,
    )
    if outcome.certificate is not None:
        result["certificate"] = outcome.certificate
    if not outcome.ok:
        result["msg"] = _verify.failure_message(
            outcome, p["method"].upper(), scrub(p["url"], secrets), credential=p["credential"],
            consumer=p["consumer"], attempts=attempts, elapsed=elapsed,
            expect_rejected=p["expect_rejected"], secrets=secrets)
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
