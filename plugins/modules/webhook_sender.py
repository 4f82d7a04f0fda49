#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: webhook_sender
short_description: Switch a webhook sender to a new signing secret, and prove what its receivers accept
version_added: 0.1.0
description:
  - The sender side of the dual-accept handshake of C(webhook_rotate.yml), and the probes of
    its receivers. The sender's API is described in the credential's C(sender:) block, like a
    C(rest) issuer - described, not coded.
  - O(action=validate) checks the O(sender) block (before anything changes) and returns the
    webhook ids.
  - O(action=switch) sets the new signing secret at the sender - the C(switch) request for each
    id of O(sender.webhook_id), with C({secret}) in its body (or form) replaced by O(secret) and
    C({id}) in its path by the id. Run it only once every receiver accepts both secrets.
  - O(action=test) asks the sender for a test delivery (the C(test) request) for each id and
    checks its answer (O(sender.test.expect_status), O(sender.test.json)).
  - O(action=deliver) plays the sender towards one receiver - signs a test payload with
    O(secret) (HMAC-SHA256, O(signature)) and POSTs it to O(url) until the receiver accepts it
    (O(expect=accepted) - O(status), else any 2xx) or rejects it (O(expect=rejected) - 401/403),
    or O(deadline) passes.
  - O(action=deliveries) reads the delivery logs of O(receivers) (which secret matched each
    delivery - C(current), C(new), C(old) or C(none)), and with O(require)/O(forbid) checks the
    entries logged after C(skip) - for example that a delivery since the switch matched the
    C(new) secret and none the C(old) one. Without O(require) and O(forbid) it returns the
    counts, to use as C(skip) later.
  - No secret ever appears in a result or message - not O(secret), not the sender's admin
    credentials, not a signature. Response bodies are never returned, only the results of
    O(sender.test.json) expectations, redacted.
author: credops.rotation maintainers (@credops)
extends_documentation_fragment:
  - credops.rotation.http
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target, if not supported the action will be skipped.
    support: partial
    details:
      - O(action=switch) and O(action=test) send nothing in check mode (RV(ignore:changed) says what
        a switch would do). O(action=deliver) and O(action=deliveries) only probe and read, and
        run the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
requirements:
  - jmespath (for O(sender.test.json) and O(action=deliveries))
options:
  action:
    description:
      - What to do.
    type: str
    required: true
    choices: [validate, switch, test, deliver, deliveries]
  credential:
    description:
      - The credential's name (its key under C(rotation_credentials)), for messages.
    type: str
    required: true
  sender:
    description:
      - The credential's C(sender) block - O(action=validate), O(action=switch), O(action=test).
    type: dict
    suboptions:
      base_url:
        description: The sender API's root URL.
        type: str
        required: true
      auth:
        description:
          - "The admin credentials of the sender's API - C({type: bearer, token}),
            C({type: basic, username, password}) or C({type: header, name, value})."
        type: dict
        required: true
        suboptions:
          type:
            description: How to authenticate.
            type: str
            choices: [bearer, basic, header]
            default: bearer
          token:
            description: The bearer token.
            type: str
          username:
            description: The basic-auth user.
            type: str
          password:
            description: The basic-auth password.
            type: str
          name:
            description: The header's name, for O(sender.auth.type=header).
            type: str
          value:
            description: The header's value, for O(sender.auth.type=header).
            type: str
      webhook_id:
        description:
          - The id of the webhook (endpoint) at the sender that signs with this secret, or a list
            of ids when several endpoints share it. Each is switched and tested.
        type: raw
        required: true
      switch:
        description:
          - The request that sets a webhook's signing secret. C({id}) in O(sender.switch.path)
            is the webhook id (URL-quoted); C({secret}) in any string of the body or form is the
            new secret, and must appear there.
        type: dict
        required: true
        suboptions:
          method:
            description: The HTTP method.
            type: str
            default: PATCH
          path:
            description: The path below O(sender.base_url).
            type: str
            default: /v1/webhooks/{id}
          body:
            description: A JSON body.
            type: raw
          form:
            description: A form-encoded body, instead of O(sender.switch.body).
            type: dict
          expect_status:
            description: The statuses that mean success; default any 2xx.
            type: list
            elements: int
      test:
        description:
          - The request that makes the sender deliver a test event now, signed with its current
            secret. Optional; without it the handshake relies on the receivers' delivery logs.
        type: dict
        suboptions:
          method:
            description: The HTTP method.
            type: str
            default: POST
          path:
            description: The path below O(sender.base_url); C({id}) is the webhook id.
            type: str
            default: /v1/webhooks/{id}/test
          body:
            description: A JSON body.
            type: raw
          expect_status:
            description: The statuses that mean the test delivery went out; default any 2xx.
            type: list
            elements: int
          json:
            description:
              - "Expectations on the JSON answer - each key a JMESPath, each value the expected
                result, e.g. C({delivered: true}) when the sender reports the receiver's verdict."
            type: dict
      signature:
        description: How the sender signs - the receivers verify the same way.
        type: dict
        suboptions:
          header:
            description: The header that carries the signature.
            type: str
            default: X-Webhook-Signature
          format:
            description: The header's value; C({timestamp}) and C({signature}) are replaced.
            type: str
            default: "t={timestamp},v1={signature}"
          payload_format:
            description: What is signed; C({timestamp}) and C({payload}) (the raw body) are replaced.
            type: str
            default: "{timestamp}.{payload}"
      headers:
        description: Extra headers on every call to the sender's API.
        type: dict
      validate_certs:
        description: Verify the sender's TLS certificate.
        type: bool
        default: true
      ca_path:
        description: A PEM CA bundle for the sender's certificate.
        type: path
      timeout:
        description: Seconds to wait for one answer of the sender.
        type: float
        default: 10
      retries:
        description: Retries of connection errors, 429 and 5xx answers of the sender.
        type: int
        default: 3
  secret:
    description:
      - O(action=switch) - the new signing secret. O(action=deliver) - the secret to sign the
        test payload with.
    type: str
  hide:
    description:
      - Other secret values to scrub from every message (for example the old secret).
    type: list
    elements: str
  url:
    description:
      - O(action=deliver) - the receiver's delivery URL (the consumer's C(verify.url)).
    type: str
  probe:
    description:
      - O(action=deliver) - which secret O(secret) is, for messages and the test payload
        (C(new), C(old)); never the value.
    type: str
    default: probe
  expect:
    description:
      - O(action=deliver) - whether the receiver must accept the delivery or reject it.
    type: str
    choices: [accepted, rejected]
    default: accepted
  status:
    description:
      - O(action=deliver) - the statuses that count as the expected answer; default any 2xx for
        O(expect=accepted), 401/403 for O(expect=rejected).
    type: list
    elements: int
  signature:
    description:
      - O(action=deliver) - how to sign (the credential's O(sender.signature) block).
    type: dict
    suboptions:
      header:
        description: The header that carries the signature.
        type: str
        default: X-Webhook-Signature
      format:
        description: The header's value; C({timestamp}) and C({signature}) are replaced.
        type: str
        default: "t={timestamp},v1={signature}"
      payload_format:
        description: What is signed; C({timestamp}) and C({payload}) (the raw body) are replaced.
        type: str
        default: "{timestamp}.{payload}"
  consumer:
    description:
      - O(action=deliver) - the receiver's name (consumer@host), for messages.
    type: str
  deadline:
    description:
      - O(action=deliver) and O(action=deliveries) with O(require) - seconds to keep trying.
    type: float
    default: 60
  interval:
    description:
      - Seconds between tries.
    type: float
    default: 1
  receivers:
    description:
      - O(action=deliveries) - the delivery logs to read, each C({name, url, skip, list_path,
        matched_path}) - C(skip) entries at the start are ignored (the count read before the
        switch); C(list_path) (default C(deliveries)) is a JMESPath to the list of deliveries,
        C(matched_path) (default C(matched)) one to which secret matched a delivery.
    type: list
    elements: dict
  since:
    description:
      - O(action=deliveries) - the RV(receivers) of an earlier O(action=deliveries) call - each
        receiver's C(count) then becomes its C(skip), so only entries logged since are judged.
    type: list
    elements: dict
  require:
    description:
      - O(action=deliveries) - at least one new entry over all receivers must have matched this
        secret.
    type: str
    choices: [current, new, old]
  forbid:
    description:
      - O(action=deliveries) - no new entry may have matched these secrets.
    type: list
    elements: str
    default: []
notes:
  - The env layout on the receivers that C(webhook_rotate.yml) writes, and that the labels of
    the delivery log refer to - C(<env_var>) the secret in use until the handshake completes,
    C(<env_var>_NEW) the new one and C(<env_var>_OLD) the old one while both are accepted; at
    the end only C(<env_var>), with the new secret.
seealso:
  - module: credops.rotation.webhook_secret
  - module: credops.rotation.secret_store
"""

EXAMPLES = r"""
- name: Preflight - is the sender block usable?
  credops.rotation.webhook_sender:
    action: validate
    credential: orders-webhook
    sender: "{{ rotation_credentials['orders-webhook'].sender }}"

- name: Every receiver accepts a delivery signed with the new secret
  credops.rotation.webhook_sender:
    action: deliver
    credential: orders-webhook
    consumer: "orders-receiver@{{ inventory_hostname }}"
    url: "http://{{ ansible_host }}:8091/webhook"
    secret: "{{ webhook_values.new }}"
    probe: new
    signature: "{{ rotation_credentials['orders-webhook'].sender.signature | default({}) }}"
  delegate_to: localhost

- name: Switch the sender to the new secret
  credops.rotation.webhook_sender:
    action: switch
    credential: orders-webhook
    sender:
      base_url: https://api.sender.example.com
      auth: {type: bearer, token: "{{ lookup('ansible.builtin.env', 'SENDER_ADMIN_TOKEN') }}"}
      webhook_id: we_1NkQ
      switch:
        method: PATCH
        path: /v1/webhooks/{id}
        body: {secret: "{secret}"}
    secret: "{{ webhook_values.new }}"

- name: The sender's test delivery is accepted
  credops.rotation.webhook_sender:
    action: test
    credential: orders-webhook
    sender: "{{ rotation_credentials['orders-webhook'].sender }}"

- name: Since the switch, deliveries matched the new secret, none the old one
  credops.rotation.webhook_sender:
    action: deliveries
    credential: orders-webhook
    receivers:
      - {name: orders-receiver@hook1, url: "http://hook1:8091/deliveries", skip: 12}
    require: new
    forbid: [old]
    deadline: 30
"""

RETURN = r"""
webhook_ids:
  description: The webhook ids of the sender block.
  returned: O(action=validate), O(action=switch), O(action=test)
  type: list
  elements: str
  sample: [we_1NkQ]
webhooks:
  description: Per webhook id, the sender's HTTP status (null in check mode) and, for
    O(action=test), the results of O(sender.test.json).
  returned: O(action=switch), O(action=test)
  type: list
  elements: dict
  sample: [{id: we_1NkQ, status: 200}]
status:
  description: The receiver's last HTTP status (null when it never answered).
  returned: O(action=deliver)
  type: int
  sample: 200
attempts:
  description: How many deliveries were sent.
  returned: O(action=deliver)
  type: int
  sample: 1
receivers:
  description: Per receiver - C(count) (entries in its log), C(new_entries) (after C(skip)) and
    C(matched) (label -> count over the new entries).
  returned: O(action=deliveries)
  type: list
  elements: dict
  sample: [{name: orders-receiver@hook1, count: 14, new_entries: 2, matched: {new: 2}}]
counts:
  description: Label -> count over every receiver's new entries.
  returned: O(action=deliveries)
  type: dict
  sample: {current: 0, new: 2, old: 0, none: 0, unknown: 0}
msg:
  description: What was done, without any secret.
  returned: always
  type: str
"""

from ansible_collections.credops.rotation.plugins.module_utils import _sender, _sender_spec
from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.module_utils._http import HTTP_ARGSPEC
from ansible_collections.credops.rotation.plugins.module_utils._module import RotationModule, merge_options
from ansible_collections.credops.rotation.plugins.module_utils._poll import poll_until

ACTIONS = ("validate", "switch", "test", "deliver", "deliveries")


def argument_spec():
    return merge_options(dict(
        action=dict(type="str", required=True, choices=list(ACTIONS)),
        credential=dict(type="str", required=True, no_log=False),
        sender=dict(type="dict", options=_sender_spec.SENDER_ARGSPEC),
        secret=dict(type="str", no_log=True),
        hide=dict(type="list", elements="str", no_log=True),
        url=dict(type="str"),
        probe=dict(type="str", default="probe"),
        expect=dict(type="str", choices=["accepted", "rejected"], default="accepted"),
        status=dict(type="list", elements="int"),
        signature=dict(type="dict", options=_sender_spec.SIGNATURE_ARGSPEC),
        consumer=dict(type="str"),
        deadline=dict(type="float", default=60),
        interval=dict(type="float", default=1),
        receivers=dict(type="list", elements="dict"),
        since=dict(type="list", elements="dict"),
        require=dict(type="str", choices=["current", "new", "old"]),
        forbid=dict(type="list", elements="str", default=[]),
    ), HTTP_ARGSPEC)


def do_validate(module, p):
    sender = _sender.Sender(p["sender"], p["credential"])
    return False, dict(webhook_ids=sender.ids,
                       msg="credential '%s': the sender block is usable (%d webhook id(s) at %s)"
                           % (p["credential"], len(sender.ids), sender.base_url))


def do_switch(module, p):
    sender = _sender.Sender(p["sender"], p["credential"])
    results = sender.switch(p["secret"], check_mode=module.check_mode)
    verb = "would switch" if module.check_mode else "switched"
    return True, dict(webhook_ids=sender.ids, webhooks=results,
                      msg="credential '%s': %s the sender's webhook(s) %s to the new secret"
                          % (p["credential"], verb, ", ".join(sender.ids)))


def do_test(module, p):
    sender = _sender.Sender(p["sender"], p["credential"])
    if not sender.config.get("test"):
        return False, dict(webhook_ids=sender.ids, webhooks=[],
                           msg="credential '%s': the sender block has no test request; nothing sent"
                               % p["credential"])
    results = sender.test(check_mode=module.check_mode, hide=[v for v in [p["secret"]] + (p["hide"] or []) if v])
    return False, dict(webhook_ids=sender.ids, webhooks=results,
                       msg="credential '%s': %s test deliveries of webhook(s) %s"
                           % (p["credential"], "would ask for" if module.check_mode else "the sender made",
                              ", ".join(sender.ids)))


def do_deliver(module, p):
    if not p["url"] or not p["secret"]:
        module.fail_json(msg="credential '%s': action=deliver needs url and secret" % p["credential"])
    res = _sender.deliver(p["url"], p["secret"], signature=p["signature"], credential=p["credential"],
                          consumer=p["consumer"], probe=p["probe"], expect=p["expect"], status=p["status"],
                          deadline=p["deadline"], interval=p["interval"], timeout=p["timeout"],
                          retries=min(p["retries"], 1), validate_certs=p["validate_certs"],
                          ca_path=p["ca_path"])
    res["msg"] = ("credential '%s': %s %s a test delivery signed with the %s secret (HTTP %s)"
                  % (p["credential"], p["consumer"] or p["url"], p["expect"], p["probe"], res["status"]))
    return False, res


def _read_all(p):
    out = []
    since = dict((item.get("name"), item.get("count")) for item in p["since"] or [] if isinstance(item, dict))
    for item in p["receivers"] or []:
        labels = _sender.read_deliveries(
            item["url"], list_path=item.get("list_path") or "deliveries",
            matched_path=item.get("matched_path") or "matched", credential=p["credential"],
            consumer=item.get("name"), timeout=p["timeout"], retries=p["retries"],
            validate_certs=p["validate_certs"], ca_path=p["ca_path"])
        name = item.get("name") or item["url"]
        skip = since.get(name) if since.get(name) is not None else item.get("skip")
        out.append(dict(name=name, labels=labels, skip=int(skip or 0)))
    return out


def do_deliveries(module, p):
    for item in p["receivers"] or []:
        if not isinstance(item, dict) or not item.get("url"):
            module.fail_json(msg="credential '%s': every receivers item needs a url" % p["credential"])
    checking = bool(p["require"] or p["forbid"])

    def read_and_judge():
        logs = _read_all(p)
        return (logs,) + tuple(_sender.judge_deliveries(logs, p["require"], p["forbid"]))

    def settled(judged):
        problems, counts = judged[1], judged[2]
        # an 'old' match is final; a missing 'new' one may still be on its way
        final = any(p["forbid"] and counts.get(label) for label in p["forbid"])
        return not checking or not problems or final

    logs, problems, counts, per = poll_until(read_and_judge, settled, p["deadline"], p["interval"],
                                             last_at_deadline=False).value
    receivers = [dict(name=log["name"], count=len(log["labels"]), new_entries=info["new_entries"],
                      matched=info["matched"]) for log, info in zip(logs, per)]
    result = dict(receivers=receivers, counts=counts)
    if checking and problems:
        raise RotationError(
            "the receivers' delivery logs do not prove the switch: %s." % "; ".join(problems),
            credential=p["credential"], step="verify",
            fix="find the sender (or sender instance) still signing with the old secret, or why its "
                "deliveries do not arrive, and re-run; the receivers keep accepting both secrets until "
                "then.")
    result["msg"] = "credential '%s': delivery logs of %d receiver(s) read; new entries: %s" % (
        p["credential"], len(receivers), ", ".join("%s=%d" % (k, v) for k, v in sorted(counts.items()) if v)
        or "none")
    return False, result


HANDLERS = {"validate": do_validate, "switch": do_switch, "test": do_test, "deliver": do_deliver,
            "deliveries": do_deliveries}


def main():
    module = RotationModule(
        argument_spec(),
        required_if=[
            ("action", "validate", ("sender",)),
            ("action", "switch", ("sender", "secret")),
            ("action", "test", ("sender",)),
            ("action", "deliver", ("url", "secret")),
            ("action", "deliveries", ("receivers",)),
        ],
    )
    p = module.params
    if p["deadline"] < 0 or p["deadline"] > 3600:
        module.fail_json(msg="deadline must be between 0 and 3600 seconds")
    if p["interval"] < 0.1:
        module.fail_json(msg="interval must be at least 0.1 seconds")
    changed, result = module.run(lambda: HANDLERS[p["action"]](module, p), credential=p["credential"],
                                 where="action %s" % p["action"], fields=dict(credential=p["credential"]))
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
