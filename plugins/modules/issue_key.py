#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: issue_key
short_description: Issue a new value for a credential at its issuer
version_added: 0.1.0
description:
  - Creates a new value (API key, access key, database password, certificate and private key,
    or a locally generated secret) for one credential, at the issuer its inventory record
    describes (O(issuer.kind)), and returns it with its key id and non-secret facts.
  - This is the I(issue) step of the rotation runbook. It does not store, deploy or revoke
    anything; M(credops.rotation.revoke_key) revokes the old value once every consumer
    verified the new one.
  - Not idempotent by design, every run outside check mode issues a new value. The rotation
    roles guard it with the store's C(rotation_phase), so an interrupted run never issues a
    third value.
  - "B(The new value is returned) in RV(secret). Ansible cannot mask a single return value, so
    every task that calls this module must set C(no_log: true) and register the result; the
    module itself keeps the value out of RV(msg), RV(key_id), RV(info) and every error message."
options:
  credential:
    description:
      - The credential's name (its key under C(rotation_credentials)), used in messages only.
    type: str
    required: true
  env_file_consumers:
    description:
      - The consumers that read the value from an environment file (systemd C(EnvironmentFile=)),
        for messages.
      - When set and the new value contains a byte no environment file can carry (a newline, a
        carriage return, a NUL), the module revokes the new value at the issuer again (where the
        kind can revoke; else it is dropped) and fails before it is returned, stored or deployed.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - credops.rotation.issuer
  - credops.rotation.http
  - credops.rotation.audit
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing is sent to the issuer (the issuer block is still validated,
        JMESPath expressions compiled); RV(ignore:changed) is C(true) and no secret is returned.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - "Kind C(aws_iam): AWS allows two access keys per user. With two keys already, the module
    fails and explains how to make room; it never deletes an active key (O(issuer.delete_inactive)
    lets it delete an inactive one). A new key is returned only once STS accepts it."
  - "Kind C(postgres): the role's password is changed at once (single-role rotation), so the old
    password stops working now. Only a SCRAM (or MD5) verifier computed here is sent to the
    server, never the clear password."
  - "Kind C(generated): RV(key_id) is a fingerprint of the value (sha256 prefix), since the value
    has no id of its own."
requirements:
  - jmespath (kind C(rest))
  - boto3 (kind C(aws_iam))
  - psycopg 3 (kind C(postgres))
  - hvac (kind C(vault_pki)); cryptography to read the certificate's validity
seealso:
  - module: credops.rotation.revoke_key
author: credops.rotation maintainers (@credops)
"""

EXAMPLES = r"""
- name: Issue a new API key at the payment provider
  credops.rotation.issue_key:
    credential: payment-gateway-api
    issuer: "{{ rotation_credentials['payment-gateway-api'].issuer }}"
  register: issued
  no_log: true   # the result holds the new secret

- name: Issue a new API key, described inline
  credops.rotation.issue_key:
    credential: payment-gateway-api
    issuer:
      kind: rest
      base_url: https://api.provider.example.com
      auth: {type: bearer, token: "{{ lookup('ansible.builtin.env', 'PROVIDER_ADMIN_TOKEN') }}"}
      create:
        method: POST
        path: /v1/api-keys
        body: {name: production-integration, permissions: [read, write]}
        expect_status: [200, 201]
        secret_path: api_key
        id_path: id
      revoke: {method: DELETE, path: "/v1/api-keys/{id}"}
    retries: 5
  register: issued
  no_log: true

- name: Issue a new access key for an IAM user
  credops.rotation.issue_key:
    credential: integration-service-account
    issuer: {kind: aws_iam, user_name: integration-service-account}
  register: issued
  no_log: true

- name: Set a new password on a PostgreSQL login role
  credops.rotation.issue_key:
    credential: orders-db
    issuer:
      kind: postgres
      host: db.example.org
      db: orders
      admin_user: rotation_admin
      admin_password: "{{ lookup('ansible.builtin.env', 'PGPASSWORD') }}"
      role: orders_app
      valid_until_days: 60
      sslmode: verify-full
  register: issued
  no_log: true

- name: Issue a certificate from a Vault PKI role
  credops.rotation.issue_key:
    credential: api-tls
    issuer: {kind: vault_pki, mount: pki, role: web, common_name: api.example.org, ttl: 720h}
  register: issued
  no_log: true

- name: Issue a new API key and record it in the audit trail in the same task
  credops.rotation.issue_key:
    credential: payment-gateway-api
    issuer: "{{ rotation_credentials['payment-gateway-api'].issuer }}"
    audit:
      previous_key_id: key_1a2b3c4d5e6f
      incident: INC-2041
  register: issued
  no_log: true

- name: Show what was issued, without the secret
  ansible.builtin.debug:
    msg: "{{ issued.key_id }} {{ issued.fingerprint }} {{ issued.info.not_after | default('') }}"
"""

RETURN = r"""
key_id:
  description:
    - The issuer's id of the new value (API key id, AccessKeyId, C(<role>@<time>) for
      postgres, certificate serial for vault_pki; the fingerprint for generated values).
    - C(null) in check mode, and for a C(rest) issuer without O(issuer.create.id_path).
  returned: always
  type: str
  sample: key_3f2a9c1b0d4e
secret:
  description:
    - The new value itself (for vault_pki the private key PEM). B(A secret:) set C(no_log) on
      the task. C(null) in check mode.
  returned: success
  type: str
  sample: null
fingerprint:
  description: sha256 of the new value, first 12 hex digits; not secret, for audits.
  returned: success
  type: str
  sample: 9f86d081884c
info:
  description:
    - Non-secret facts about the new value, by kind.
    - C(rest) C(http_status). C(aws_iam) C(user_name), C(status), C(create_date),
      C(accepted_after_seconds), C(deleted_inactive_key_id).
      C(postgres) C(role), C(server), C(valid_until), C(password_encryption).
      C(vault_pki) C(certificate), C(issuing_ca), C(ca_chain), C(serial), C(not_before),
      C(not_after) (ISO-8601 UTC), C(private_key_type), C(common_name).
      C(generated) C(length), C(alphabet), C(entropy_bits), C(prefix).
  returned: always
  type: dict
  sample: {serial: "1c:5b:4b:3d", not_after: "2025-01-14T10:30:00Z"}
stored:
  description:
    - Non-secret facts the store keeps beside the new value, as the issuer kind declares them
      (C(vault_pki) the certificate's validity and serial in C(metadata), the certificate, its
      CA chain and validity in C(data)); both empty for the other kinds.
  returned: always
  type: dict
  sample: {metadata: {not_after: "2025-01-14T10:30:00Z"}, data: {}}
public:
  description:
    - Public values the deploy step uses beside the new value (C(vault_pki) C(cert) and C(ca)),
      or an empty dict.
  returned: always
  type: dict
  sample: {}
kind:
  description: The issuer kind.
  returned: always
  type: str
  sample: rest
has_ids:
  description: Whether the issuer gives its values ids (false for generated values).
  returned: always
  type: bool
  sample: true
can_revoke:
  description: Whether M(credops.rotation.revoke_key) means anything for this kind.
  returned: always
  type: bool
  sample: true
msg:
  description: What was done, without the secret.
  returned: always
  type: str
  sample: "credential 'payment-gateway-api': issued a new value at the rest issuer (key id key_3f2a9c1b0d4e)"
audit_path:
  description:
    - The audit trail file the entry of O(audit) was appended to.
  returned: when O(audit) is set and an entry was written
  type: str
  sample: ./rotation-audit.jsonl
audit_events:
  description:
    - The events written to the audit trail for O(audit).
  returned: when O(audit) is set and an entry was written
  type: list
  elements: str
  sample: [issued]
"""

import json

from ansible_collections.credops.rotation.plugins.module_utils import _env_file
from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.module_utils._http import HTTP_ARGSPEC
from ansible_collections.credops.rotation.plugins.module_utils._issuers._base import fingerprint
from ansible_collections.credops.rotation.plugins.module_utils._issuers.registry import (
    ISSUER_ARGSPEC, issuer_from_params)
from ansible_collections.credops.rotation.plugins.module_utils._module import AUDIT_ARGSPEC, RotationModule, merge_options


def argument_spec():
    return merge_options(dict(credential=dict(type="str", required=True), issuer=ISSUER_ARGSPEC,
                              env_file_consumers=dict(type="list", elements="str", default=[])), HTTP_ARGSPEC,
                         AUDIT_ARGSPEC)


def _declared(issuer, key_id, info):
    """What the kind declares the roles need beside a new value (never secret): the facts the
    store keeps with it, and the public values the deploy step uses."""
    return dict(stored=issuer.stored_facts(key_id, info), public=issuer.public_values(info))


def _refuse(issuer, credential, key_id, secret, problem, consumers):
    """The new value contains ``problem``, which an environment file cannot carry: revoke it at the
    issuer again (or drop it), and raise."""
    if issuer.can_revoke:
        try:
            issuer.revoke(key_id, secret=secret)
            what = "the new key %s was revoked at the issuer" % key_id
        except RotationError as exc:
            what = "revoking the new key %s at the issuer failed too (%s): revoke it there" % (key_id, exc.message)
    else:
        what = "the new value was dropped"
    error = RotationError(
        "the issuer's new value contains %s, which an environment file cannot carry (env_file of %s); %s, "
        "nothing was stored or deployed." % (problem, ", ".join(consumers), what), credential=credential, step="issue",
        fix="the issuer's value format (issuer.create, or a generated issuer's alphabet/prefix).")
    error.changed = issuer.can_revoke
    raise error


def issue(issuer, credential, check_mode, env_file_consumers=()):
    """(changed, result) for one issue; raises RotationError."""
    base = dict(kind=issuer.kind, has_ids=issuer.has_ids, can_revoke=issuer.can_revoke)
    if check_mode:
        return True, dict(base, key_id=None, secret=None, fingerprint=None, info={},
                          msg="credential '%s': would issue a new value at the %s issuer (check mode: nothing "
                              "was sent to it)." % (credential, issuer.kind), **_declared(issuer, None, {}))
    created = issuer.create()
    secret, key_id, info = created.get("secret"), created.get("id"), created.get("info") or {}
    if not secret:
        raise RotationError("the %s issuer returned no value." % issuer.kind, credential=credential,
                            step="issue", fix="check the issuer block; report this as a bug if it is right.")
    if (key_id and secret in str(key_id)) or secret in json.dumps(info, default=str):
        raise RotationError("the new value would be returned as its key id or in its facts, where it is not "
                            "protected.", credential=credential, step="issue",
                            fix="check the issuer block (for rest: create.id_path must not select the secret); "
                                "a key was created at the issuer: revoke it there.")
    problem = _env_file.problem(secret) if env_file_consumers else ""
    if problem:
        _refuse(issuer, credential, key_id, secret, problem, env_file_consumers)
    fp = fingerprint(secret)
    return True, dict(base, key_id=key_id, secret=secret, fingerprint=fp, info=info,
                      msg="credential '%s': issued a new value at the %s issuer (key id %s, fingerprint %s)."
                          % (credential, issuer.kind, key_id, fp), **_declared(issuer, key_id, info))


def main():
    module = RotationModule(argument_spec())
    credential = module.params["credential"]

    def work():
        issuer = issuer_from_params(module.params)
        try:
            outcome = issue(issuer, credential, module.check_mode, module.params["env_file_consumers"])
        except RotationError:
            for warning in issuer.warnings:
                module.warn(warning)
            raise
        for warning in issuer.warnings:
            module.warn(warning)
        return outcome

    changed, result = module.run(work, credential=credential, where="step issue")
    module.audited(result, "issued", key_id=result.get("key_id"),
                   details=dict(issuer=result["kind"], fingerprint=result.get("fingerprint") or ""))
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
