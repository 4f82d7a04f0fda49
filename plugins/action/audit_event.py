# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: append an event to the controller's JSON-lines audit trail."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.credops.rotation.plugins.module_utils import _audit


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("path", "credential", "event", "consumer", "key_id",
                             "previous_key_id", "incident", "details", "actor"))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        for required in ("credential", "event"):
            if not args.get(required):
                raise AnsibleActionFail("audit_event: %s is required" % required)
        path = args.get("path") or (task_vars or {}).get("rotation_audit_log") or "./rotation-audit.jsonl"
        try:
            entry = _audit.make_entry(
                args["credential"], args["event"], consumer=args.get("consumer"),
                key_id=args.get("key_id"), previous_key_id=args.get("previous_key_id"),
                incident=args.get("incident"), details=args.get("details"),
                actor_name=args.get("actor"))
        except ValueError as exc:
            raise AnsibleActionFail("audit_event: %s" % exc)
        if self._task.check_mode:
            result.update(changed=False, entry=entry, path=path, skipped_write=True)
            return result
        result.update(changed=True, entry=entry, path=_audit.append(path, entry))
        return result
