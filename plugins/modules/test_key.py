#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: test_key
short_description: Prove at the issuer that a credential value is accepted, or that it is dead
description:
  - Calls the issuer's own test of a value (the C(test) call of a C(rest) issuer, a real login
    for C(postgres), STS for C(aws_iam)) and checks the answer against O(expect).
  - The standard runbook uses it before anything is revoked (the new value must work at the
    issuer); the emergency runbook uses it to prove the compromised value is dead.
  - Issuers that cannot test a value (C(generated), C(vault_pki)) report C(tested=false); that is
    not a failure unless O(require_test) is set.
version_added: 0.1.0
author: credops.rotation maintainers (@credops)
extends_documentation_fragment:
  - credops.rotation.issuer
  - credops.rotation.http
attributes:
  check_mode:
    support: full
    description: The test only reads, so it runs in check mode too.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  credential:
    description: The credential's name, for messages.
    type: str
    required: true
  secret:
    description: The value to test.
    type: str
    required: true
  key_id:
    description: The issuer's id of the value (C(aws_iam) needs the access key id).
    type: str
  expect:
    description: C(accepted) (the value must work) or C(rejected) (it must be dead).
    type: str
    choices: [accepted, rejected]
    default: accepted
  require_test:
    description: Fail when the issuer kind cannot test a value.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: The new key works at the provider before anything is revoked
  credops.rotation.test_key:
    credential: payment-gateway-api
    issuer: "{{ rotation_credentials['payment-gateway-api'].issuer }}"
    secret: "{{ new_value }}"
    expect: accepted
"""

RETURN = r"""
tested:
  description: Whether the issuer could test the value at all.
  returned: always
  type: bool
accepted:
  description: What the issuer said (null when it could not test).
  returned: always
  type: bool
"""

from ansible_collections.credops.rotation.plugins.module_utils._http import HTTP_ARGSPEC
from ansible_collections.credops.rotation.plugins.module_utils._issuers.registry import (
    ISSUER_ARGSPEC, issuer_from_params)
from ansible_collections.credops.rotation.plugins.module_utils._module import RotationModule


def main():
    spec = dict(credential=dict(type="str", required=True), issuer=ISSUER_ARGSPEC,
                secret=dict(type="str", required=True, no_log=True),
                key_id=dict(type="str"),
                expect=dict(type="str", default="accepted", choices=["accepted", "rejected"]),
                require_test=dict(type="bool", default=False))
    module = RotationModule(spec, HTTP_ARGSPEC)
    p = module.params
    credential = p["credential"]

    def work():
        issuer = issuer_from_params(p)
        return issuer, issuer.test(p["secret"], key_id=p["key_id"])

    issuer, accepted = module.run(work, credential=credential, where="step verify")
    if accepted is None:
        if p["require_test"]:
            module.fail_json(msg="credential '%s', step verify: the %s issuer cannot test a value. Fix: drop "
                                 "require_test or describe a test call." % (credential, issuer.kind))
        module.exit_json(changed=False, tested=False, accepted=None,
                         msg="credential '%s': the %s issuer cannot test a value." % (credential, issuer.kind))
    want = p["expect"] == "accepted"
    if accepted != want:
        if want:
            module.fail_json(tested=True, accepted=accepted, msg=(
                "credential '%s', step verify: the issuer rejects the new value. Fix: check the issuer's "
                "permissions for new keys and its clock; nothing was revoked, the rotation stays in flight: "
                "re-run once fixed, or roll it back with credops.rotation.rollback." % credential))
        module.fail_json(tested=True, accepted=accepted, msg=(
            "credential '%s', step revoke: the issuer still accepts a value that must be dead. Fix: revoke it "
            "at the issuer by hand now (docs/runbooks/troubleshooting.md)." % credential))
    module.exit_json(changed=False, tested=True, accepted=accepted,
                     msg="credential '%s': the issuer %s the value, as expected." % (
                         credential, "accepts" if accepted else "rejects"))


if __name__ == "__main__":
    main()
