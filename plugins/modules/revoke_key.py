#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: revoke_key
short_description: Revoke a credential's old value at its issuer
version_added: 0.1.0
description:
  - Revokes one value of a credential at the issuer its inventory record describes
    (O(issuer.kind)), by its key id. This is the I(revoke) step of the rotation runbook, and
    the first step of the emergency one.
  - Idempotent, a value that is already revoked (or unknown to the issuer) is reported
    C(changed=false).
  - Optionally proves the value is dead (O(prove_dead)), by using it against the issuer, and
    enforces the revoke guard (O(unused_since)), by refusing to revoke a value the issuer saw
    in use after every known consumer verified the new one.
  - "What revoke means per kind: C(rest) the described O(issuer.revoke) call (404 and 410 mean
    already revoked). C(aws_iam) DeleteAccessKey, or UpdateAccessKey Inactive with
    O(issuer.revoke_mode=deactivate). C(vault_pki) PKI revoke by serial (the certificate goes on
    the CRL). C(postgres) the new password replaced the old one when it was issued, so revoke
    confirms by a real login with O(secret) that the old one is dead; if it still logs in it is
    the role's current password, and revoke refuses unless O(force); a rollback passes
    O(restore_secret) to set the previous password again. C(generated) nothing to revoke
    (RV(revoked) is C(false))."
  - With O(store), the value to revoke is read from the credential's store in the same run (the
    previous value while a rotation is in flight, else the current one; O(key_id), if given, picks
    the value by its id). That is the emergency runbook's first step in one task, with nothing
    between the start of the run and the revocation but one read of the store.
  - With O(audit), the task records the event C(revoked) once the value is revoked, by this task
    or earlier (details C(proven_dead) and C(already_revoked)); nothing for an incident already
    handled, nor for a kind with nothing to revoke.
options:
  credential:
    description:
      - The credential's name (its key under C(rotation_credentials)), used in messages only.
    type: str
    required: true
  key_id:
    description:
      - The issuer's id of the value to revoke (the store's C(previous_key_id) in a rotation).
      - Required by every kind but C(generated); optional for C(postgres).
    type: str
  secret:
    description:
      - The value being revoked. Needed by O(prove_dead), and by kind C(postgres), which confirms
        with it that the old password no longer logs in.
    type: str
  restore_secret:
    description:
      - Rollback. The previous value, to make it work again at the issuer before the value in
        O(key_id) is revoked. Only kind C(postgres) has anything to do (issuing replaced the
        role's password, so a rollback must set the previous one again, which also ends the new
        one); for the other kinds the previous value stays valid until revoked, and this is ignored.
    type: str
  prove_dead:
    description:
      - After revoking, use O(secret) against the issuer (O(issuer.test) for rest, STS for
        aws_iam, a login for postgres) and fail unless it is refused.
      - Where the kind cannot test a value (vault_pki, generated, rest without O(issuer.test)),
        RV(proven_dead) is C(null) and a warning says so.
    type: bool
    default: false
  prove_timeout:
    description:
      - Seconds to keep testing while the issuer still accepts the value (AWS takes a few
        seconds to forget a deleted key).
    type: int
    default: 30
  unused_since:
    description:
      - The revoke guard. An ISO-8601 time, when the last known consumer verified the new value.
        If the issuer reports a use of the value at or after it (O(issuer.usage) for rest,
        GetAccessKeyLastUsed for aws_iam), nothing is revoked and the task fails naming the
        sources seen, so the dependency map can be fixed.
      - Unset, no guard. Kinds that keep no usage record pass with a warning.
    type: str
  quiet_seconds:
    description:
      - With O(unused_since), watch the usage record this long before revoking
        (C(rotation_quiet_seconds)); C(0) checks once. Not waited on in check mode.
    type: int
    default: 0
  incident:
    description:
      - With O(store), the incident this revocation answers. When the store records that this
        incident was already handled (phase C(finished), metadata C(last_incident) equal to it), the
        value the store holds now is the replacement, so nothing is revoked and RV(already_handled)
        is C(true). Running the same emergency again never kills the new value.
      - Also the incident of the O(audit) entry, unless O(audit.incident) names one.
    type: str
  force:
    description:
      - Revoke even when the guard saw the value in use, and for C(postgres) even when the value is
        still the role's current password (in an emergency, when consumers may lose access until they
        get the new value). Say so in the audit trail.
    type: bool
    default: false
extends_documentation_fragment:
  - credops.rotation.issuer
  - credops.rotation.http
  - credops.rotation.store.optional
  - credops.rotation.audit
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing is revoked. The issuer is only read (O(issuer.get) for rest, the key
        list for aws_iam, the certificate for vault_pki, a login with O(secret) for postgres) to
        predict RV(ignore:changed); when it cannot tell, RV(ignore:changed) is C(true). The guard is checked once.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - jmespath (kind C(rest))
  - boto3 (kind C(aws_iam))
  - psycopg 3 (kind C(postgres))
  - hvac (kind C(vault_pki))
seealso:
  - module: credops.rotation.issue_key
author: credops.rotation maintainers (@credops)
"""

EXAMPLES = r"""
- name: Revoke the previous API key once every consumer verified the new one
  credops.rotation.revoke_key:
    credential: payment-gateway-api
    issuer: "{{ rotation_credentials['payment-gateway-api'].issuer }}"
    key_id: "{{ stored.previous_id }}"
    secret: "{{ stored.previous }}"
    unused_since: "{{ verified_at }}"
    quiet_seconds: "{{ rotation_quiet_seconds | default(0) }}"
    force: "{{ force_revoke | default(false) | bool }}"
    prove_dead: true
  register: revoked

- name: Emergency, revoke the compromised key first, no guard
  credops.rotation.revoke_key:
    credential: integration-service-account
    issuer: {kind: aws_iam, user_name: integration-service-account}
    key_id: AKIAIOSFODNN7EXAMPLE

- name: Emergency, revoke whatever the store holds as the compromised value, and prove it dead
  credops.rotation.revoke_key:
    credential: payment-gateway-api
    issuer: "{{ rotation_credentials['payment-gateway-api'].issuer }}"
    store: "{{ rotation_credentials['payment-gateway-api'].store }}"
    incident: INC-2041
    prove_dead: true
    force: true
  register: revoked

- name: Rollback of a database password, the previous one is set again, the new one ends
  credops.rotation.revoke_key:
    credential: orders-db
    issuer: "{{ rotation_credentials['orders-db'].issuer }}"
    key_id: "{{ stored.pending_id }}"
    secret: "{{ stored.pending }}"
    restore_secret: "{{ stored.previous }}"
    prove_dead: true

- name: Confirm the old database password is dead
  credops.rotation.revoke_key:
    credential: orders-db
    issuer: "{{ rotation_credentials['orders-db'].issuer }}"
    key_id: "{{ stored.previous_id }}"
    secret: "{{ stored.previous }}"
    prove_dead: true
"""

RETURN = r"""
revoked:
  description:
    - Whether the value is revoked at the issuer after this task, by it or before it.
    - C(false) in check mode for a value still active, and for kinds that cannot revoke.
  returned: always
  type: bool
  sample: true
already_handled:
  description:
    - With O(incident), C(true) when the store showed that incident already handled; nothing was revoked.
  returned: when O(store) is given
  type: bool
  sample: false
store_state:
  description:
    - With O(store), what the store held when it was read, before the revocation, without any
      value - C(phase), C(in_flight), C(key_id), C(old_key_id), C(new_key_id), C(metadata), ...
      as RV(credops.rotation.secret_store#module:phase) and its siblings describe them.
  returned: when O(store) is given
  type: dict
  sample: {phase: finished, in_flight: false, key_id: key_8d1c0a, old_key_id: null, metadata: {rotation_phase: finished}}
proven_dead:
  description:
    - C(true) when O(prove_dead) found the value refused by the issuer; C(null) when not asked,
      in check mode, or when the kind cannot test values.
  returned: always
  type: bool
  sample: true
usage:
  description:
    - With O(unused_since), the uses the issuer reported at or after it (each C(time), C(source));
      C(null) when no guard ran or the kind keeps no usage record.
  returned: always
  type: list
  elements: dict
  sample: []
restored:
  description: Whether O(restore_secret) was made the issuer's current value again (postgres rollback).
  returned: always
  type: bool
  sample: false
forced:
  description: Whether O(force) was used.
  returned: always
  type: bool
  sample: false
key_id:
  description: The key id acted on.
  returned: always
  type: str
  sample: key_3f2a9c1b0d4e
kind:
  description: The issuer kind.
  returned: always
  type: str
  sample: rest
msg:
  description: What was done.
  returned: always
  type: str
  sample: "credential 'payment-gateway-api': revoked key key_3f2a9c1b0d4e at the rest issuer."
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
  sample: [revoked]
"""

import time

from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.module_utils._http import HTTP_ARGSPEC
from ansible_collections.credops.rotation.plugins.module_utils._issuers._base import Issuer
from ansible_collections.credops.rotation.plugins.module_utils._issuers.registry import (
    ISSUER_ARGSPEC, issuer_from_params)
from ansible_collections.credops.rotation.plugins.module_utils._module import AUDIT_ARGSPEC, RotationModule, merge_options
from ansible_collections.credops.rotation.plugins.module_utils._poll import poll_until
from ansible_collections.credops.rotation.plugins.module_utils._stores._base import public_view
from ansible_collections.credops.rotation.plugins.module_utils._stores.registry import get_store, store_option_spec
from ansible_collections.credops.rotation.plugins.module_utils._time import parse_time


def argument_spec():
    return merge_options(dict(
        credential=dict(type="str", required=True),
        issuer=ISSUER_ARGSPEC,
        key_id=dict(type="str", no_log=False),
        secret=dict(type="str", no_log=True),
        restore_secret=dict(type="str", no_log=True),
        prove_dead=dict(type="bool", default=False),
        prove_timeout=dict(type="int", default=30),
        unused_since=dict(type="str"),
        quiet_seconds=dict(type="int", default=0),
        force=dict(type="bool", default=False),
        store=dict(store_option_spec(), required=False),
        incident=dict(type="str"),
    ), HTTP_ARGSPEC, AUDIT_ARGSPEC)


def from_store(store, params):
    """Fill params' key_id and secret from the store; (public view of the state, already_handled,
    the values read, which the caller must treat as no_log values).

    The value at risk is the previous one while a rotation is in flight, else the current one;
    a key_id given picks the value by its id instead (its secret, when the store has it)."""
    state = store.read()
    view = public_view(state)
    values = [state[slot] for slot in ("current", "pending", "previous", "old", "new") if state.get(slot)]
    incident = params.get("incident")
    if incident and state.get("phase") == "finished" and \
            (state.get("metadata") or {}).get("last_incident") == incident:
        return view, True, values
    if not params.get("key_id"):
        params["key_id"] = state.get("old_id") if view["in_flight"] else state.get("current_id")
    if params.get("secret") is None:
        slots = ("old", "current", "pending", "previous") if view["in_flight"] else ("current",)
        for slot in slots:
            if state.get(slot) is not None and state.get(slot + "_id") == params["key_id"]:
                params["secret"] = state[slot]
                break
    return view, False, values


def _what(key_id):
    return "key %s" % key_id if key_id else "the value (no key id given)"


def uses_since(issuer, key_id, since):
    """The issuer's uses of key_id at or after ``since`` (uses with an unreadable time count),
    or None when the kind keeps no usage record."""
    uses = issuer.usage(key_id, since)
    if uses is None:
        return None
    start = parse_time(since, required=True)
    found = []
    for use in uses:
        try:
            if parse_time(use.get("time"), required=True) < start:
                continue
        except (TypeError, ValueError):
            pass
        found.append(use)
    return found


def guard(issuer, credential, key_id, since, quiet_seconds, sleep=time.sleep, clock=time.monotonic):
    """The revoke guard: raise RotationError when key_id was used since ``since``, watching
    for ``quiet_seconds``. Returns the (empty) list of uses, or None when not recorded."""
    try:
        parse_time(since, required=True)
    except (TypeError, ValueError):
        raise RotationError("unused_since %r is not an ISO-8601 time." % (since,), credential=credential,
                            step="revoke", fix="pass the time every consumer verified the new value, "
                            "for example 2024-08-15T10:30:00Z.")
    uses = poll_until(lambda: uses_since(issuer, key_id, since), lambda found: found is None or found,
                      quiet_seconds, 5.0, clock=clock, sleep=sleep).value
    if uses:
        sources = sorted(set(str(u.get("source") or "unknown source") for u in uses))
        last = max(str(u.get("time")) for u in uses)
        raise RotationError(
            "key %s was used %d time(s) after every known consumer verified the new value (since %s), "
            "last at %s, by: %s. Nothing was revoked; the new value stays live." % (
                key_id, len(uses), since, last, ", ".join(sources)),
            credential=credential, step="revoke",
            fix="find the consumer(s) behind those sources, add them to the credential's consumers and deploy "
                "the new value to them, then re-run; or override with -e force_revoke=true.")
    return uses


def prove(issuer, secret, key_id, timeout, sleep=time.sleep, clock=time.monotonic):
    """True once the issuer refuses the value, False if it still accepts it after timeout,
    None if the kind cannot test values."""
    accepted = poll_until(lambda: issuer.test(secret, key_id=key_id), lambda answer: not answer,
                          timeout, 2.0, clock=clock, sleep=sleep).value
    return None if accepted is None else not accepted


def nothing_revoked(issuer, key_id, force):
    """The result's fields before anything was revoked."""
    return dict(kind=issuer.kind, key_id=key_id, revoked=False, proven_dead=None, usage=None, restored=False,
                forced=bool(force))


def revoke(issuer, params, check_mode, warn):
    """(changed, result) for one revoke; raises RotationError."""
    credential, key_id, secret = params["credential"], params["key_id"], params["secret"]
    restore_secret = params.get("restore_secret")
    result = nothing_revoked(issuer, key_id, params["force"])
    if not issuer.can_revoke:
        result["msg"] = ("credential '%s': the %s issuer has nothing to revoke; the old value dies when the store "
                         "and the consumers forget it." % (credential, issuer.kind))
        return False, result
    if not key_id and getattr(issuer, "revoke_needs_id", issuer.has_ids):
        raise RotationError("key_id is required to revoke at the %s issuer." % issuer.kind, credential=credential,
                            step="revoke", fix="pass key_id (the store keeps it as key_id / previous_key_id).")
    if params["unused_since"] and not params["force"]:
        result["usage"] = guard(issuer, credential, key_id, params["unused_since"],
                                0 if check_mode else params["quiet_seconds"])
        if result["usage"] is None:
            warn("credential '%s': the %s issuer keeps no usage record, so the revoke guard cannot check that "
                 "%s is unused." % (credential, issuer.kind, _what(key_id)))
    if check_mode:
        active = issuer.exists(key_id)
        if active is None and secret is not None:
            active = issuer.test(secret, key_id=key_id)
        changed = True if active is None else bool(active)
        if restore_secret is not None and type(issuer).restore is not Issuer.restore:
            changed = changed or issuer.test(restore_secret) is not True
        result["revoked"] = active is False
        result["msg"] = "credential '%s': %s %s at the %s issuer (check mode)." % (
            credential, "would revoke" if changed else "nothing to revoke:", _what(key_id), issuer.kind)
        return changed, result
    if restore_secret is not None:
        result["restored"] = bool(issuer.restore(restore_secret))
    if result["restored"] and secret is None:
        changed = True  # the previous value replaced the one being revoked: nothing left to do
    else:
        changed = issuer.revoke(key_id, secret=secret, force=params["force"]) or result["restored"]
    result["revoked"] = True
    result["msg"] = "credential '%s': %s%s %s at the %s issuer." % (
        credential, "restored the previous value, " if result["restored"] else "",
        "revoked" if changed else "already revoked:", _what(key_id), issuer.kind)
    if params["prove_dead"]:
        try:
            result["proven_dead"] = prove_dead(issuer, credential, key_id, secret, params["prove_timeout"], warn)
        except RotationError as exc:
            exc.changed = changed
            raise
    return changed, result


def prove_dead(issuer, credential, key_id, secret, timeout, warn):
    """Prove a revoked value dead; True, or None when the kind cannot test. Raises RotationError."""
    if secret is None:
        raise RotationError("prove_dead needs the value itself (secret).", credential=credential,
                            step="prove_dead", fix="pass secret, or drop prove_dead.")
    proven = prove(issuer, secret, key_id, timeout)
    if proven is None:
        warn("credential '%s': the %s issuer cannot test a value, so prove_dead could not prove %s dead."
             % (credential, issuer.kind, _what(key_id)))
    elif not proven:
        raise RotationError("%s is still accepted by the %s issuer %ds after it was revoked." % (
            _what(key_id), issuer.kind, timeout), credential=credential, step="prove_dead",
            fix="check at the issuer that the revoke took (and, for rest, that issuer.revoke and issuer.test "
                "address the same key); treat the value as live until it is refused.")
    return proven


def main():
    module = RotationModule(argument_spec())
    credential = module.params["credential"]
    stored = {}

    def work():
        issuer = issuer_from_params(module.params)
        if module.params["store"]:
            view, handled, values = from_store(get_store(module.params["store"], credential), module.params)
            # values read here were not among the task's arguments: mask them like no_log options
            module.no_log_values.update(values)
            stored.update(store_state=view, already_handled=handled)
            if handled:
                result = nothing_revoked(issuer, view["key_id"], module.params["force"])
                result["msg"] = ("credential '%s': incident %s was already handled; key %s in the store is its "
                                 "replacement, nothing was revoked." % (credential, module.params["incident"], view["key_id"]))
                module.exit_json(changed=False, **dict(result, **stored))
            if module.params["prove_dead"] and module.params["secret"] is None:
                module.params["prove_dead"] = False
                module.warn("credential '%s': the store has no value for key %s, so it cannot be proven dead."
                            % (credential, module.params["key_id"]))
        return revoke(issuer, module.params, module.check_mode, module.warn)

    changed, result = module.run(work, credential=credential, where="step revoke")
    result.update(stored)
    if result.get("revoked"):  # by this task, or found revoked already (not an incident already handled)
        module.audited(result, "revoked", key_id=result.get("key_id"),
                       details=dict(proven_dead=result.get("proven_dead"), already_revoked=not changed))
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
