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
  - The O(retries) of one try (connection errors, 429 and 5xx, with backoff from 0.1 s, so that a
    service just restarted is seen as soon as it listens, and C(Retry-After)) are not made when the
    status is one the check expects, and their waits never pass the deadline.
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

from ansible_collections.credops.rotation.plugins.module_utils import _verify_run
from ansible_collections.credops.rotation.plugins.module_utils._module import RotationModule


def main():
    module = RotationModule(_verify_run.argument_spec())
    p = module.params
    problem = _verify_run.problems(p)
    if problem:
        module.fail_json(**problem)
    secrets = _verify_run.secret_values(p, _verify_run.request_headers(p))
    for value in secrets:
        module.no_log_values.add(value)
    result = _verify_run.run(p, warn=module.warn, secrets=secrets)
    if result.get("msg"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
