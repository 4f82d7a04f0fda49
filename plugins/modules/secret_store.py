#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: secret_store
short_description: Read a credential's store, or move its rotation one step on
version_added: 0.1.0
description:
  - The I(store) step of the rotation runbook. Reads and writes the secrets manager that holds
    a credential's current and previous value (HashiCorp Vault / OpenBao KV version 2, or AWS
    Secrets Manager), with the layout of the inventory contract, and moves the rotation through
    its phases. The phase lives in the store, so an interrupted run that starts again carries
    on where it stopped and never writes a second new value.
  - "The state machine (O(state) is the step to take):"
  - "V(pending): keep the current value as the previous one and write the new value
    (O(value), O(key_id)); phase C(pending). KV v2 writes the new value into C(<field>) (the
    old one into C(previous_<field>)); AWS writes a new version labelled AWSPENDING (the
    secret is created if it does not exist). Allowed when no rotation is in flight (phase
    none, C(finished) or C(rolled_back)). While one is in flight (C(pending), C(deployed),
    C(verified)) it fails with I(a rotation is already in flight), unless O(value) is that
    rotation's value: then nothing changes (an interrupted run coming back)."
  - "V(phase): record O(phase) V(deployed) (every consumer has the new value) or V(verified)
    (every consumer verified it; sets C(rotation_verified_at)). Phases only move forward:
    C(pending) -> C(deployed) -> C(verified)."
  - "V(promote): every consumer verified the new value, make it current. AWS moves AWSCURRENT
    to the AWSPENDING version (the old one becomes AWSPREVIOUS) and removes AWSPENDING; KV v2
    has no value to move (the new value is already in C(<field>)). The phase becomes
    C(verified) (with C(rotation_verified_at)) if it was C(pending) or C(deployed). A second
    V(promote) changes nothing."
  - "V(finished): once the old value is revoked, forget it: promote if not done yet, drop
    C(previous_<field>)/C(previous_key_id) (AWS: the revoked value keeps its AWSPREVIOUS label,
    as AWS's own rotation leaves it, but is no previous value any more), set C(last_rotated) and
    phase C(finished). Only from phase C(verified): the previous value is never forgotten
    before every consumer verified the new one."
  - "V(rollback): put the previous value back as the current one and drop the new one; phase
    C(rolled_back). KV v2: C(<field>) := C(previous_<field>). AWS: before promotion remove
    AWSPENDING (AWSCURRENT never moved); after it move AWSCURRENT back to the AWSPREVIOUS
    version. Refused after C(finished) (the old value is revoked) and on a first rotation
    (there is no previous value to put back)."
  - "V(read): change nothing; return the phase, key ids, version and metadata, and with
    O(return_values=true) the values themselves."
  - Every step is idempotent. Running it again when the store is already there reports
    C(changed=false); for example a second V(promote) or V(rollback) changes nothing.
  - "KV v2: each write is a new KV version made with check-and-set (the version read), so two
    runs at the same time cannot both write. The phase is written twice: in the data, in the
    same check-and-set write as the value (C(rotation_phase), the one that counts), and in
    C(custom_metadata) (C(rotation_phase), C(consumers), C(last_rotated)) for people and
    tools. AWS: metadata lives in the secret's tags C(credops:<name>), never a value; Secrets
    Manager has no check-and-set, the labels are read again just before they move."
  - No value ever appears in RV(msg), in errors, or in the diff (changed values show as
    C(<secret changed>)).
options:
  credential:
    description:
      - The credential's name (its key under C(rotation_credentials)), for messages.
    type: str
    required: true
  state:
    description:
      - The step to take; see the state machine above.
    type: str
    default: read
    choices: [read, pending, phase, promote, finished, rollback]
  value:
    description:
      - The new value, for O(state=pending).
    type: str
  key_id:
    description:
      - The issuer's id of O(value), for O(state=pending) (stored as C(key_id); the old one
        becomes C(previous_key_id)). Leave out for values without ids; AWS then derives the
        version id from a slow salted hash of the value.
    type: str
  phase:
    description:
      - The phase to record, for O(state=phase).
    type: str
    choices: [deployed, verified]
  metadata:
    description:
      - Non-secret metadata to record with the step (KV v2 C(custom_metadata), AWS tags), as
        strings; a list becomes a comma-separated string. For example
        C(consumers), C(rotation_contact), C(incident).
      - C(last_rotated) may be given to record another time than now with O(state=finished).
      - C(rotation_phase) is not allowed here, it follows from O(state).
    type: dict
    default: {}
  data:
    description:
      - Non-secret data fields to record with the step, as strings, for example
        C(rotated_by). KV v2 writes them into the secret's data beside the value, AWS into
        tags. C(rotated_at), C(rotation_verified_at) and C(rolled_back_at) are set by the
        steps themselves unless given here.
    type: dict
    default: {}
  return_values:
    description:
      - With O(state=read), also return the values RV(new), RV(old), RV(current), RV(pending)
        and RV(previous).
      - "B(They are secrets.) The task must set C(no_log: true); the module fails otherwise.
        Prefer the P(credops.rotation.store#lookup) lookup inside the task that needs the value."
    type: bool
    default: false
extends_documentation_fragment:
  - credops.rotation.store
  - credops.rotation.audit
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the store and reports what would change, and the state it would leave
        (RV(phase), RV(key_id), ...), without writing.
  diff_mode:
    support: full
    details:
      - Shows the phase, key ids, metadata and data before and after. Values appear only as
        C(<secret>), C(<secret changed>) or C(null).
  platform:
    platforms: posix
notes:
  - O(audit) is only for O(state=pending), and records the event C(stored) (the key id, the store
    kind, the phase) once the value was written. The other steps are recorded with
    M(credops.rotation.audit_event).
  - "RV(current), RV(pending) and RV(previous) are what the store holds (AWS - AWSCURRENT,
    AWSPENDING, AWSPREVIOUS), and differ between kinds while a rotation is in flight. Playbooks
    that must work with every kind use RV(new) / RV(new_key_id) (the value consumers must run -
    the one being rotated in, else the current one) and RV(old) / RV(old_key_id) (the one being
    rotated out, while in flight). After a rollback RV(new) is the value put back."
  - A run stopped half-way is finished by the next one with the same step (KV v2 - the
    custom_metadata copy of the phase is repaired; AWS - an AWSPENDING version always counts
    as a rotation in flight, and labels are moved before tags).
  - "AWS - AWSPREVIOUS counts as the previous value only while a rotation is in flight, like
    C(previous_<field>) in KV v2. After V(finished) the revoked value keeps the label, as AWS's
    own rotation leaves it, but RV(previous) is null and nothing rolls back to it; the next
    V(pending) drops the label and the next promotion puts it on the value rotated out. The first version of a
    new secret is AWSCURRENT as well as AWSPENDING (AWS always makes it so). Tag values can
    hold only letters, digits, spaces and C(+ - = . _ : / @), so other characters are written
    C(=XX) (UTF-8 hex) - C(consumers) reads C(web-app=2Cmobile-backend) in the console; RV(metadata)
    returns it decoded."
  - "Permissions. KV v2 - C(create), C(read), C(update) on C(<mount>/data/<path>), C(read),
    C(update) on C(<mount>/metadata/<path>). AWS - secretsmanager:DescribeSecret,
    GetSecretValue, ListSecretVersionIds, PutSecretValue, UpdateSecretVersionStage,
    CreateSecret, TagResource, UntagResource."
requirements:
  - hvac (kind vault_kv2)
  - boto3 (kind aws_secretsmanager)
seealso:
  - plugin: credops.rotation.store
    plugin_type: lookup
  - module: credops.rotation.issue_key
  - module: credops.rotation.revoke_key
author: credops.rotation maintainers (@credops)
"""

EXAMPLES = r"""
- name: Store the new value (previous kept), phase pending
  credops.rotation.secret_store:
    credential: payment-gateway-api
    store: "{{ rotation_credentials['payment-gateway-api'].store }}"
    state: pending
    value: "{{ issued.secret }}"
    key_id: "{{ issued.key_id }}"
    metadata:
      consumers: "{{ rotation_credentials['payment-gateway-api'].consumers | map(attribute='name') }}"
    data:
      rotated_by: "{{ lookup('credops.rotation.actor') }}"

- name: Every consumer has it
  credops.rotation.secret_store:
    credential: payment-gateway-api
    store: "{{ rotation_credentials['payment-gateway-api'].store }}"
    state: phase
    phase: deployed

- name: Every consumer verified it - make it current (AWS - AWSPENDING becomes AWSCURRENT)
  credops.rotation.secret_store:
    credential: payment-gateway-api
    store: "{{ rotation_credentials['payment-gateway-api'].store }}"
    state: promote

- name: The old key is revoked - forget it
  credops.rotation.secret_store:
    credential: payment-gateway-api
    store: "{{ rotation_credentials['payment-gateway-api'].store }}"
    state: finished

- name: Verification failed - put the previous value back
  credops.rotation.secret_store:
    credential: payment-gateway-api
    store: "{{ rotation_credentials['payment-gateway-api'].store }}"
    state: rollback

- name: Where is the rotation? (no values)
  credops.rotation.secret_store:
    credential: payment-gateway-api
    store:
      kind: aws_secretsmanager
      secret_id: payment-gateway-api
      region: eu-west-1
  register: stored

- name: Read the values for a deploy step (new / old mean the same for every store kind)
  credops.rotation.secret_store:
    credential: payment-gateway-api
    store:
      kind: vault_kv2
      url: https://vault.example.org:8200
      path: api-credentials/payment-gateway-api
      field: api_key
    return_values: true
  register: stored_values
  no_log: true   # required with return_values
"""

RETURN = r"""
phase:
  description: The rotation phase after the step (C(null) if the store never saw a rotation).
  returned: always
  type: str
  sample: verified
key_id:
  description: The key id of the current value (KV v2 C(key_id); AWS the AWSCURRENT version's).
  returned: always
  type: str
  sample: key_3f2a9c1b0d4e
pending_key_id:
  description:
    - The key id of the value being rotated in, while in flight (KV v2 equal to RV(key_id);
      AWS the AWSPENDING version's).
  returned: always
  type: str
  sample: key_3f2a9c1b0d4e
previous_key_id:
  description: The key id of the previous value, kept while a rotation is in flight.
  returned: always
  type: str
  sample: key_0a1b2c3d4e5f
version:
  description: The store's version of the current value (KV v2 version number; AWS VersionId).
  returned: always
  type: raw
  sample: 7
last_rotated:
  description:
    - ISO-8601 UTC. KV v2 - C(custom_metadata.last_rotated), else the data's C(rotated_at),
      else the current version's C(created_time). AWS - the C(credops:last_rotated) tag, else C(LastRotatedDate), else the
      AWSCURRENT version's creation date.
  returned: always
  type: str
  sample: "2024-08-15T10:30:00Z"
created_time:
  description:
    - ISO-8601 UTC, when the current version was created. KV v2 - the latest KV version, that
      is the last write (a phase change is a write too). AWS - the AWSCURRENT version.
  returned: always
  type: str
  sample: "2024-08-15T10:29:41Z"
in_flight:
  description: Whether a rotation is in flight after the step (phase pending, deployed or verified).
  returned: always
  type: bool
  sample: false
exists:
  description: Whether the secret exists (after the step).
  returned: always
  type: bool
  sample: true
metadata:
  description: The non-secret metadata (KV v2 C(custom_metadata) without C(rotation_phase); AWS the C(credops:) tags).
  returned: always
  type: dict
  sample: {consumers: "web-app,mobile-backend,batch-processor", last_rotated: "2024-08-15T10:30:00Z"}
data:
  description: The non-secret rotation data fields (C(rotated_at), C(rotated_by), C(rotation_verified_at), C(rolled_back_at)).
  returned: always
  type: dict
  sample: {rotated_at: "2024-08-15T10:29:41Z", rotated_by: alice}
new_key_id:
  description:
    - The key id of the value consumers must run - the one being rotated in while a rotation is
      in flight, else the current one. The same meaning for every store kind.
  returned: always
  type: str
  sample: key_3f2a9c1b0d4e
old_key_id:
  description:
    - The key id of the value being rotated out, while a rotation is in flight (KV v2
      C(previous_key_id); AWS the AWSCURRENT version's before promotion, AWSPREVIOUS's after).
      The key to revoke once every consumer verified the new one. C(null) otherwise.
  returned: always
  type: str
  sample: key_0a1b2c3d4e5f
new:
  description: The value consumers must run (see RV(new_key_id)). B(Secret.)
  returned: O(state=read) and O(return_values=true)
  type: str
old:
  description: The value being rotated out, while a rotation is in flight (see RV(old_key_id)). B(Secret.)
  returned: O(state=read) and O(return_values=true)
  type: str
current:
  description: The current value. B(Secret.)
  returned: O(state=read) and O(return_values=true)
  type: str
pending:
  description: The value being rotated in (KV v2 equal to RV(current) while in flight; AWS AWSPENDING). B(Secret.)
  returned: O(state=read) and O(return_values=true)
  type: str
previous:
  description: The previous value, while a rotation is in flight. B(Secret.)
  returned: O(state=read) and O(return_values=true)
  type: str
msg:
  description: What was done, without any value.
  returned: always
  type: str
  sample: "credential 'payment-gateway-api': vault_kv2 secret/api-credentials/payment-gateway-api: phase deployed -> verified"
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
  sample: [stored]
"""

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.credops.rotation.plugins.module_utils._module import AUDIT_ARGSPEC, RotationModule
from ansible_collections.credops.rotation.plugins.module_utils._stores._base import public_view
from ansible_collections.credops.rotation.plugins.module_utils._stores.registry import (
    get_store,
    missing_library,
    store_option_spec,
)

STATES = ("read", "pending", "phase", "promote", "finished", "rollback")
SECRET_SLOTS = ("current", "pending", "previous")
RETURNED_VALUES = ("new", "old") + SECRET_SLOTS


def argument_spec():
    return dict(
        credential=dict(type="str", required=True),
        store=store_option_spec(),
        state=dict(type="str", default="read", choices=list(STATES)),
        value=dict(type="str", no_log=True),
        key_id=dict(type="str", no_log=False),
        phase=dict(type="str", choices=["deployed", "verified"]),
        metadata=dict(type="dict", default={}),
        data=dict(type="dict", default={}),
        return_values=dict(type="bool", default=False),
        **AUDIT_ARGSPEC
    )


def diff_view(before, after):
    """before/after for --diff: metadata, phase, key ids; values only as placeholders."""
    def view(state, other):
        out = public_view(state)
        for key in ("version", "created_time", "exists", "new_key_id", "old_key_id", "in_flight"):
            out.pop(key)
        for slot in SECRET_SLOTS:
            value = state.get(slot)
            if value is None:
                out[slot] = None
            elif other is None or other.get(slot) == value:
                out[slot] = "<secret>"
            else:
                out[slot] = "<secret changed>"
        return out
    return dict(before=view(before, None), after=view(after, before))


def run_step(store, params, check_mode):
    """(changed, before, after) for one step; raises RotationError."""
    before = store.read()
    state = params["state"]
    kw = dict(metadata=params["metadata"], data=params["data"], check_mode=check_mode, state=before)
    if state == "read":
        return False, before, before
    if state == "pending":
        changed, after = store.write_pending(params["value"], params["key_id"], **kw)
    elif state == "phase":
        changed, after = store.set_phase(params["phase"], **kw)
    elif state == "promote":
        changed, after = store.promote(**kw)
    elif state == "finished":
        changed, after = store.clear_previous(**kw)
    else:
        changed, after = store.rollback(**kw)
    return changed, before, after


def describe_change(credential, store, state, changed, before, after, check_mode):
    where = "%s %s" % (store.kind, store.describe())
    head = "credential '%s': %s: " % (credential, where)
    if state == "read":
        return head + "phase %s, key id %s" % (after.get("phase"), after.get("current_id"))
    if not changed:
        return head + "already there (phase %s), nothing to do" % after.get("phase")
    verb = "would move" if check_mode else "moved"
    text = "%s phase %s -> %s" % (verb, before.get("phase"), after.get("phase"))
    if state == "promote":
        text = "%s the new value (phase %s -> %s)" % (
            "would promote" if check_mode else "promoted", before.get("phase"), after.get("phase"))
    elif before.get("phase") == after.get("phase"):
        text = "%s metadata (phase %s)" % ("would update" if check_mode else "updated", after.get("phase"))
    if after.get("current_id") != before.get("current_id") or after.get("pending_id") != before.get("pending_id"):
        text += ", key id %s" % (after.get("pending_id") or after.get("current_id"))
    return head + text


def main():
    module = RotationModule(
        argument_spec(),
        required_if=[("state", "pending", ("value",)), ("state", "phase", ("phase",))],
    )
    params = module.params
    credential = params["credential"]
    state = params["state"]
    if params["return_values"] and state != "read":
        module.fail_json(msg="credential '%s': return_values is only for state=read" % credential)
    if params["audit"] is not None and state != "pending":
        module.fail_json(msg="credential '%s': audit is only for state=pending (the event stored); record the other "
                             "steps with credops.rotation.audit_event" % credential)
    if params["return_values"] and not module.no_log:
        module.fail_json(msg="credential '%s': return_values=true returns secret values; set "
                             "no_log: true on this task (or use the credops.rotation.store lookup)"
                             % credential)
    lib = missing_library(params["store"]["kind"])
    if lib:
        module.fail_json(msg=missing_required_lib(lib[0]), exception=lib[1])

    def work():
        store = get_store(params["store"], credential)
        return (store,) + run_step(store, params, module.check_mode)

    store, changed, before, after = module.run(work, credential=credential, where="step store",
                                               fields=dict(credential=credential, step="store"))
    result = public_view(after)
    result["msg"] = describe_change(credential, store, state, changed, before, after, module.check_mode)
    if state == "read" and params["return_values"]:
        for slot in RETURNED_VALUES:
            result[slot] = after.get(slot)
    if module._diff and state != "read":
        result["diff"] = diff_view(before, after)
    if state == "pending" and changed:
        module.audited(result, "stored", key_id=params["key_id"], details=dict(store=params["store"]["kind"], phase="pending"))
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
