#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: assess_scope
short_description: Assess the scope of a credential compromise
description:
  - The emergency runbook's scope step. Reads the issuer's own record of the compromised key's
    uses since O(since) (the C(usage) call of a C(rest) issuer, C(GetAccessKeyLastUsed) for
    C(aws_iam)) and the store's file audit log (a Vault/OpenBao file audit device) for reads of
    the credential's path, and names the earliest use from a source that is not a known
    consumer.
  - "Runs after the revocation in C(emergency.yml): it never delays it."
version_added: 0.1.0
author: credops.rotation maintainers (@credops)
extends_documentation_fragment:
  - credops.rotation.issuer
  - credops.rotation.http
attributes:
  check_mode:
    support: full
    description: Only reads.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  credential:
    description: The credential's name.
    type: str
    required: true
  key_id:
    description: The compromised key's id at the issuer.
    type: str
  since:
    description: ISO-8601 UTC time the compromise may have started (C(compromised_since)).
    type: str
    required: true
  known_sources:
    description: Addresses of the known consumers; uses from anywhere else are unauthorized.
    type: list
    elements: str
    default: []
  store_audit_log:
    description: Path (on the controller) of the store's file audit log, if readable.
    type: path
  store_mount:
    description: The store's KV mount, to find reads of the credential in the audit log.
    type: str
  store_path:
    description: The store's path of the credential.
    type: str
"""

EXAMPLES = r"""
- name: Who used the leaked key since the leak
  credops.rotation.assess_scope:
    credential: payment-gateway-api
    issuer: "{{ rotation_credentials['payment-gateway-api'].issuer }}"
    key_id: key_0123
    since: "2026-11-30T22:00:00Z"
    known_sources: ["10.0.0.11", "10.0.0.12"]
    store_audit_log: /var/log/openbao/audit.log
    store_mount: secret
    store_path: api-credentials/payment-gateway-api
"""

RETURN = r"""
scope:
  description: Counts, first use, unknown sources and the earliest unauthorized use.
  returned: always
  type: dict
uses:
  description: Each use the issuer recorded (time, source).
  returned: always
  type: list
store_reads:
  description: Each read of the credential in the store's audit log (time, source, actor).
  returned: always
  type: list
"""

import traceback

from ansible_collections.credops.rotation.plugins.module_utils import _scope
from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.module_utils._http import HTTP_ARGSPEC
from ansible_collections.credops.rotation.plugins.module_utils._issuers.registry import (
    ISSUER_ARGSPEC, issuer_from_params)
from ansible_collections.credops.rotation.plugins.module_utils._module import RotationModule


def main():
    spec = dict(credential=dict(type="str", required=True), issuer=ISSUER_ARGSPEC,
                key_id=dict(type="str"), since=dict(type="str", required=True),
                known_sources=dict(type="list", elements="str", default=[]),
                store_audit_log=dict(type="path"), store_mount=dict(type="str"),
                store_path=dict(type="str"))
    module = RotationModule(spec, HTTP_ARGSPEC)
    p = module.params
    warnings = []
    uses = []
    try:
        issuer = issuer_from_params(p)
        found = issuer.usage(p["key_id"], p["since"]) if p["key_id"] else None
        if found is None:
            warnings.append("the %s issuer keeps no usage record for this key: scope from the store only"
                            % issuer.kind)
        uses = found or []
    except RotationError as exc:
        warnings.append("issuer usage unavailable: %s" % exc)
    except Exception as exc:  # the scope report must not fail the emergency
        warnings.append("issuer usage unavailable: %s" % type(exc).__name__)
        module.debug(traceback.format_exc())
    reads = []
    if p["store_audit_log"] and p["store_path"]:
        try:
            with open(p["store_audit_log"]) as handle:
                reads = _scope.store_reads(handle, p["store_mount"] or "secret", p["store_path"], p["since"])
        except (IOError, OSError) as exc:
            warnings.append("store audit log unreadable: %s" % exc)
    scope = _scope.summarize(uses, reads, p["known_sources"])
    for text in warnings:
        module.warn(text)
    module.exit_json(changed=False, scope=scope, uses=uses, store_reads=reads,
                     msg="credential '%s': %d use(s) of the key since %s, %d store read(s); earliest "
                         "unauthorized use: %s" % (p["credential"], scope["uses"], p["since"],
                                                   scope["store_reads"], scope["earliest_unauthorized_use"]))


if __name__ == "__main__":
    main()
