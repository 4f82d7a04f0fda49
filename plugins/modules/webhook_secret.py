#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: webhook_secret
short_description: Generate webhook signing secrets, sign and verify test payloads, and rule the dual-accept phases
version_added: 0.1.0
description:
  - The pieces of a webhook secret rotation (the C(webhook_rotate.yml) playbook) that are
    computed, not stored. The phase itself lives in the store (M(credops.rotation.secret_store)).
  - O(action=generate) makes a new high-entropy signing secret, with a prefix such as C(whsec_).
    The task must set C(no_log=true) (the module fails otherwise, generating nothing); the
    registered variable keeps the value for the next task.
  - O(action=sign) signs a test payload with HMAC-SHA256 and returns the signature and the
    signature header a sender would send (by default C(t=<ts>,v1=<hex>) over C(<ts>.<payload>)).
  - O(action=verify) checks a signature against a list of accepted secrets, comparing in
    constant time, and fails unless the result is O(expect_valid).
  - O(action=phase) validates a move of the dual-accept handshake (C(single) -> C(dual_accept)
    -> C(complete)) and returns the phase to move to, or fails on an illegal move such as
    C(single) -> C(complete) (dropping the old secret before both were accepted).
author: credops.rotation maintainers (@credops)
attributes:
  check_mode:
    support: full
    description: Every action only computes; it runs the same in check mode and never reports a change.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  action:
    description:
      - What to do.
    type: str
    required: true
    choices: [generate, sign, verify, phase]
  length:
    description:
      - O(action=generate) - random bytes in the secret (URL-safe base64 encoded), at least 16.
    type: int
    default: 32
  prefix:
    description:
      - O(action=generate) - text in front of the random part.
    type: str
    default: whsec_
  secret:
    description:
      - O(action=sign) - the secret to sign with. O(action=verify) - the one accepted secret,
        when O(accepted_secrets) is not given.
      - The whole string, prefix included, is the HMAC key (UTF-8).
    type: str
  accepted_secrets:
    description:
      - O(action=verify) - the secrets a receiver accepts, in order (during C(dual_accept) -
        the new and the old one). The result names the index that matched, never the value.
    type: list
    elements: str
  payload:
    description:
      - O(action=sign) and O(action=verify) - the payload (the raw request body), as text.
    type: str
  timestamp:
    description:
      - O(action=sign) - the Unix time to sign, default now.
      - O(action=verify) - the timestamp, when the header does not carry it.
    type: int
  header:
    description:
      - O(action=verify) - the signature header value, parsed with O(header_format).
        A repeated signature item (C(t=1,v1=aa,v1=bb)) gives several signatures, any of which may match.
    type: str
  signature:
    description:
      - O(action=verify) - a bare signature (hex), instead of or in addition to O(header).
    type: str
  header_format:
    description:
      - The signature header; C({timestamp}) and C({signature}) are replaced.
    type: str
    default: "t={timestamp},v1={signature}"
  payload_format:
    description:
      - What is signed; C({timestamp}) and C({payload}) are replaced.
    type: str
    default: "{timestamp}.{payload}"
  tolerance:
    description:
      - O(action=verify) - the most seconds the timestamp may be away from now (replay
        protection); C(0) does not check it.
    type: int
    default: 300
  expect_valid:
    description:
      - O(action=verify) - fail unless the signature's validity is this. C(false) proves that a
        dropped secret is no longer accepted.
    type: bool
    default: true
  current_phase:
    description:
      - O(action=phase) - the phase the store records now.
    type: str
    choices: [single, dual_accept, complete]
  phase:
    description:
      - O(action=phase) - the phase to move to; omitted - the next one of the handshake
        (C(single) -> C(dual_accept) -> C(complete) -> C(single)).
      - Allowed moves - staying put; C(single) -> C(dual_accept); C(dual_accept) -> C(complete),
        or -> C(single) to roll back (the new secret dropped); C(complete) -> C(single) or
        C(dual_accept) (the next rotation).
    type: str
    choices: [single, dual_accept, complete]
notes:
  - Signatures are HMAC-SHA256, lower-case hex. Verification compares with
    C(hmac.compare_digest) against every accepted secret and every signature, without an
    early exit.
seealso:
  - module: credops.rotation.verify_endpoint
"""

EXAMPLES = r"""
- name: New signing secret
  credops.rotation.webhook_secret:
    action: generate
    prefix: whsec_
    length: 32
  register: new_secret
  no_log: true

- name: May we start accepting both secrets?
  credops.rotation.webhook_secret:
    action: phase
    current_phase: "{{ stored.phase | default('single') }}"
    phase: dual_accept
  register: move

- name: Sign a test event with the new secret
  credops.rotation.webhook_secret:
    action: sign
    secret: "{{ new_secret.secret }}"
    payload: '{"type": "credops.rotation.test"}'
  register: signed

- name: Send it to the receiver, which must accept it
  ansible.builtin.uri:
    url: https://hooks.example.org/webhooks/payments
    method: POST
    body: '{"type": "credops.rotation.test"}'
    headers:
      Stripe-Signature: "{{ signed.header }}"

- name: After the switch, a signature made with the old secret must no longer pass
  credops.rotation.webhook_secret:
    action: verify
    accepted_secrets: ["{{ new_secret.secret }}"]
    payload: '{"type": "credops.rotation.test"}'
    header: "{{ old_signed.header }}"
    expect_valid: false
"""

RETURN = r"""
secret:
  description: The new signing secret (the task must set C(no_log=true)).
  returned: action=generate
  type: str
secret_id:
  description: A non-secret identifier of the secret (C(sha256:) and 16 hex digits of its hash), for audit records.
  returned: action=generate, action=sign
  type: str
  sample: "sha256:5e884898da280471"
timestamp:
  description: The timestamp signed or verified.
  returned: action=sign, action=verify
  type: int
  sample: 1723717800
signature:
  description: The HMAC-SHA256 signature, hex.
  returned: action=sign
  type: str
header:
  description: The signature header value, formatted with O(header_format).
  returned: action=sign
  type: str
  sample: "t=1723717800,v1=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
valid:
  description: Whether the signature matched one of the accepted secrets.
  returned: action=verify
  type: bool
matched:
  description: The index in the accepted secrets of the one that matched, null when none did.
  returned: action=verify
  type: int
  sample: 0
reason:
  description: Why the signature is (not) valid.
  returned: action=verify
  type: str
current_phase:
  description: The phase given.
  returned: action=phase
  type: str
  sample: single
phase:
  description: The phase to move to.
  returned: action=phase
  type: str
  sample: dual_accept
allowed:
  description: The phases allowed from current_phase.
  returned: action=phase
  type: list
  elements: str
receivers_accept:
  description:
    - Which stored values receivers accept in the returned phase (names, not values) -
      C(current), and C(previous) during C(dual_accept).
  returned: action=phase
  type: list
  elements: str
  sample: [current, previous]
"""

import hashlib

from ansible_collections.credops.rotation.plugins.module_utils import _webhook
from ansible_collections.credops.rotation.plugins.module_utils._module import RotationModule


def secret_id(secret):
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()[:16]


def do_generate(p):
    secret = _webhook.generate(p["length"], p["prefix"])
    return dict(secret=secret, secret_id=secret_id(secret))


def do_sign(p):
    signed = _webhook.sign(p["secret"], p["payload"], p["timestamp"],
                           header_format=p["header_format"], payload_format=p["payload_format"])
    signed["secret_id"] = secret_id(p["secret"])
    return signed


def do_verify(p):
    accepted = p["accepted_secrets"] if p["accepted_secrets"] else [p["secret"]]
    res = _webhook.verify(accepted, p["payload"], header=p["header"], signature_value=p["signature"],
                          timestamp=p["timestamp"], header_format=p["header_format"],
                          payload_format=p["payload_format"], tolerance=p["tolerance"])
    if res["valid"] != p["expect_valid"]:
        if p["expect_valid"]:
            msg = "the webhook signature is not valid: %s" % res["reason"]
            fix = ("check that the sender signs with a secret the receiver accepts (during "
                   "dual_accept both the new and the old one), and the header/payload formats")
        else:
            msg = ("the webhook signature is still valid (accepted secret #%s matched), "
                   "expected it to be rejected" % res["matched"])
            fix = "check that the old secret was dropped from the receivers (phase complete)"
        res["failed"] = True
        res["msg"] = msg + ". Fix: " + fix + "."
    return res


def do_phase(p):
    target = _webhook.transition(p["current_phase"], p["phase"])
    return dict(current_phase=p["current_phase"], phase=target,
                allowed=list(_webhook.TRANSITIONS[p["current_phase"]]),
                receivers_accept=list(_webhook.ACCEPTED[target]))


ACTIONS = {"generate": do_generate, "sign": do_sign, "verify": do_verify, "phase": do_phase}


def main():
    module = RotationModule(
        dict(
            action=dict(type="str", required=True, choices=list(ACTIONS)),
            length=dict(type="int", default=_webhook.DEFAULT_LENGTH),
            prefix=dict(type="str", default=_webhook.DEFAULT_PREFIX),
            secret=dict(type="str", no_log=True),
            accepted_secrets=dict(type="list", elements="str", no_log=True),
            payload=dict(type="str"),
            timestamp=dict(type="int"),
            header=dict(type="str"),
            signature=dict(type="str"),
            header_format=dict(type="str", default=_webhook.DEFAULT_HEADER_FORMAT),
            payload_format=dict(type="str", default=_webhook.DEFAULT_PAYLOAD_FORMAT),
            tolerance=dict(type="int", default=_webhook.DEFAULT_TOLERANCE),
            expect_valid=dict(type="bool", default=True),
            current_phase=dict(type="str", choices=list(_webhook.PHASES)),
            phase=dict(type="str", choices=list(_webhook.PHASES)),
        ),
        required_if=[
            ("action", "sign", ("secret", "payload")),
            ("action", "verify", ("payload",)),
            ("action", "verify", ("secret", "accepted_secrets"), True),
            ("action", "verify", ("header", "signature"), True),
            ("action", "phase", ("current_phase",)),
        ],
    )
    p = module.params
    if p["action"] == "generate" and not module.no_log:
        # a module cannot mark one returned value secret: the task must hide its result
        module.fail_json(msg="webhook_secret action=generate returns the new secret: set "
                             "'no_log: true' on the task (the registered variable keeps the "
                             "value). Nothing was generated.", changed=False)
    error = None
    try:
        result = ACTIONS[p["action"]](p)
    except _webhook.WebhookError as exc:
        error = "webhook_secret %s: %s" % (p["action"], exc)
    if error:
        module.fail_json(msg=error, changed=False)
    result["changed"] = False
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
