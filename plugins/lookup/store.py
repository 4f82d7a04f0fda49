# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: store
author: credops.rotation maintainers (@credops)
version_added: 0.1.0
short_description: Read a credential's value or rotation metadata from its store
description:
  - Reads the store of each credential named in the terms (HashiCorp Vault / OpenBao KV
    version 2, or AWS Secrets Manager) from the controller, and returns its current value, or
    with O(what) its pending value, its previous value, or its rotation metadata.
  - The store settings are the credential's C(store) block under C(rotation_credentials)
    (the inventory contract), or O(store). They are checked like the module's, with the same
    defaults and environment fallbacks (E(VAULT_ADDR), E(VAULT_TOKEN), E(AWS_REGION), ...),
    taken from the controller's environment.
  - "B(The values are secrets.) Use the lookup inside the task that needs the value and set
    C(no_log: true) on any task whose arguments or output would show it. O(what=metadata)
    returns no value and is safe to print."
  - Read only; this never changes the store. M(credops.rotation.secret_store) moves a
    rotation on.
options:
  _terms:
    description: The names of the credentials (keys of C(rotation_credentials)).
    type: list
    elements: str
    required: true
  what:
    description:
      - V(current) the value the store serves now (KV v2 C(<field>), AWS AWSCURRENT).
      - V(pending) the value being rotated in (KV v2 the same as current while a rotation is in
        flight; AWS AWSPENDING), C(null) when none.
      - V(new) the value consumers must run, the same for every store kind - the one being
        rotated in while a rotation is in flight, else the current one.
      - V(old) the value being rotated out while a rotation is in flight (KV v2 the previous
        value; AWS AWSCURRENT before promotion, AWSPREVIOUS after), C(null) otherwise.
      - V(previous) the value before it, kept while a rotation is in flight, C(null) when none.
      - V(metadata) a dict without any value - C(phase), C(in_flight), C(key_id),
        C(pending_key_id), C(previous_key_id), C(new_key_id), C(old_key_id), C(version), C(last_rotated), C(created_time),
        C(exists), C(metadata), C(data).
    type: str
    default: current
    choices: [current, pending, new, old, previous, metadata]
  store:
    description:
      - The store block to read, instead of the credential's own; same options as the module's
        O(credops.rotation.secret_store#module:store).
      - With several terms, the same block is used for each.
    type: dict
  credentials:
    description:
      - The C(rotation_credentials) mapping, to find each credential's C(store) block.
    type: dict
    vars:
      - name: rotation_credentials
  missing:
    description:
      - What to do when the value asked for is absent (no secret yet, or no pending / previous
        value). V(error) fails; V(null) returns C(null).
    type: str
    default: error
    choices: [error, "null"]
notes:
  - Runs on the controller, so the store must be reachable from it, and the Python library of
    the store kind (hvac or boto3) must be installed there.
seealso:
  - module: credops.rotation.secret_store
"""

EXAMPLES = r"""
- name: Write the current API key into the application's environment
  ansible.builtin.lineinfile:
    path: /etc/application/environment
    regexp: "^PAYMENT_API_KEY="
    line: "PAYMENT_API_KEY={{ lookup('credops.rotation.store', 'payment-gateway-api', what='new') }}"
  no_log: true

- name: Where is the rotation of this credential?
  ansible.builtin.debug:
    msg: "{{ lookup('credops.rotation.store', 'payment-gateway-api', what='metadata') }}"

- name: The previous value, to roll a consumer back (null when there is none)
  ansible.builtin.set_fact:
    old_value: "{{ lookup('credops.rotation.store', 'payment-gateway-api', what='previous', missing='null') }}"
  no_log: true

- name: Read a secret described inline
  ansible.builtin.set_fact:
    db_password: >-
      {{ lookup('credops.rotation.store', 'orders-db',
                store={'kind': 'aws_secretsmanager', 'secret_id': 'orders-db', 'field': 'password'}) }}
  no_log: true
"""

RETURN = r"""
_raw:
  description:
    - One item per term. The value (a string), or C(null) with O(missing=null); with
      O(what=metadata) a dict without any value.
  type: list
  elements: raw
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.module_utils._stores._base import public_view
from ansible_collections.credops.rotation.plugins.module_utils._stores.registry import (
    get_store,
    missing_library,
)


def pick(state, what):
    if what == "metadata":
        return public_view(state)
    return state.get(what)


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        what = self.get_option("what")
        missing = self.get_option("missing")
        override = self.get_option("store")
        credentials = self.get_option("credentials") or {}
        results = []
        for name in terms:
            name = str(name)
            config = override
            if config is None:
                record = credentials.get(name) if isinstance(credentials, dict) else None
                if not isinstance(record, dict):
                    raise AnsibleLookupError("credential '%s' is not in rotation_credentials; pass "
                                             "store=... or fix the name" % name)
                config = record.get("store")
                if not isinstance(config, dict):
                    raise AnsibleLookupError("credential '%s' has no store block in "
                                             "rotation_credentials" % name)
            lib = missing_library((config or {}).get("kind"))
            if lib:
                raise AnsibleLookupError("credential '%s': the Python library %s is needed on the "
                                         "controller to read a %s store" % (name, lib[0], config.get("kind")))
            try:
                state = get_store(dict(config), name).read()
            except RotationError as exc:
                raise AnsibleLookupError(str(exc))
            value = pick(state, what)
            if value is None and missing == "error":
                raise AnsibleLookupError(
                    "credential '%s': the store holds no %s value (phase %s)%s"
                    % (name, what, state.get("phase"),
                       "" if state.get("exists") else "; the secret does not exist yet"))
            results.append(value)
        return results
