# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of this collection's modules.

``RotationModule`` is the module's ``AnsibleModule``, built from the module's own options and
the shared ones its doc fragments describe (``HTTP_ARGSPEC``, ``KUBERNETES_CONNECTION_ARGSPEC``),
and ``run`` is the one place a ``RotationError`` becomes ``fail_json``: its message (no secret
in it), its step and whether something changed before it.

    module = RotationModule(dict(credential=dict(type="str", required=True)), HTTP_ARGSPEC)
    changed, result = module.run(lambda: work(module.params), credential=..., where="step issue")
    module.exit_json(changed=changed, **result)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.credops.rotation.plugins.module_utils._audit import FORBIDDEN_KEYS
from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError, scrub

# The option ``audit`` (doc fragment credops.rotation.audit): the module names the entries of what
# it did, this collection's action plugin (plugins/plugin_utils/in_process.py) writes them to the
# audit trail in the same task, as audit_event would.
AUDIT_ARGSPEC = dict(audit=dict(type="dict", options=dict(
    incident=dict(type="str"),
    previous_key_id=dict(type="str", no_log=False),
    details=dict(type="dict", default={}),
)))


def merge_options(own, *shared):
    """A module's argument_spec: its own options, then each shared set; a name defined twice is
    a bug in the module, not something to settle silently."""
    spec = dict(own)
    for options in shared:
        twice = sorted(set(spec) & set(options))
        if twice:
            raise ValueError("options defined twice: %s" % ", ".join(twice))
        spec.update(options)
    return spec


class RotationModule(AnsibleModule):
    """An ``AnsibleModule`` of this collection (check mode supported unless said otherwise)."""

    def __init__(self, argument_spec, *shared, **kwargs):
        kwargs.setdefault("supports_check_mode", True)
        super(RotationModule, self).__init__(argument_spec=merge_options(argument_spec, *shared), **kwargs)
        problem = self.audit_problem()
        if problem:
            self.fail_json(msg=problem)

    def audit_problem(self):
        """What is wrong with the option ``audit`` (a secret field in its details), or None: the
        module fails with it as it starts, before it changes anything."""
        audit = self.params.get("audit")
        if not isinstance(audit, dict):  # not set, or another module's option of that name (a bool)
            return None
        bad = sorted(k for k in audit.get("details") or {} if str(k).lower() in FORBIDDEN_KEYS)
        if bad:
            return "credential '%s': audit.details must not carry secret fields: %s" % (
                self.params.get("credential"), ", ".join(bad))
        return None

    def audited(self, result, event, key_id=None, details=None):
        """``result`` with the audit entry of ``event`` in ``audit_entries`` when the task asked
        for one (the option ``audit``) and this is not check mode. The entry holds ids and facts,
        never a value: the action plugin writes it to the trail and takes it out of the result. The
        module's own ``details`` (what happened) win over the task's."""
        audit = self.params.get("audit")
        if audit is None or self.check_mode:
            return result
        entry = dict(credential=self.params["credential"], event=event, key_id=key_id,
                     previous_key_id=audit.get("previous_key_id"),
                     incident=audit.get("incident") or self.params.get("incident"),
                     details=dict(audit.get("details") or {}, **(details or {})))
        result.setdefault("audit_entries", []).append(entry)
        return result

    def hidden(self, text):
        """``text`` without any of the task's no_log values (and the values added to them)."""
        return scrub(text, sorted(self.no_log_values, key=lambda value: (-len(str(value)), str(value))))

    def run(self, work, credential=None, where=None, fields=None):
        """What ``work()`` returns; the task fails on a ``RotationError``.

        The failure carries the error's text as ``msg``, its ``step`` and ``changed`` (set on the
        error when something changed before it), over ``fields``: what the module reports with
        any failure (the credential's name, what already happened). With ``where`` (e.g.
        ``"step issue"``), any other exception fails the task too, as "credential 'NAME', WHERE:
        unexpected TYPE: TEXT" with its traceback; without, it propagates."""
        try:
            return work()
        except RotationError as exc:
            failure = dict(fields or {})
            failure.setdefault("changed", exc.changed)
            failure.update(msg=self.hidden(exc), step=exc.step)
            self.fail_json(**failure)
        except Exception as exc:  # a bug or an unforeseen library error: still no secret in the message
            if where is None:
                raise
            failure = dict(fields or {})
            failure.update(msg="credential '%s', %s: unexpected %s: %s" % (
                credential, where, type(exc).__name__, self.hidden(exc)), exception=self.hidden(traceback.format_exc()))
            self.fail_json(**failure)
