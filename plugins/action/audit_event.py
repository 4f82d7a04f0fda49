# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: append an event to the controller's JSON-lines audit trail, and send it to
the durable sinks of ``rotation_audit_sinks`` (syslog/journald, an HTTP collector)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.credops.rotation.plugins.module_utils import _audit, _audit_sinks

display = Display()

DEFAULT_PATH = "./rotation-audit.jsonl"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("path", "credential", "event", "consumer", "key_id",
                             "previous_key_id", "incident", "details", "actor", "sinks"))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        for required in ("credential", "event"):
            if not args.get(required):
                raise AnsibleActionFail("audit_event: %s is required" % required)
        path = args.get("path") or task_vars.get("rotation_audit_log") or DEFAULT_PATH
        sinks = args["sinks"] if "sinks" in args else self._templar.template(task_vars.get("rotation_audit_sinks"))
        problems = _audit_sinks.problems(sinks, "sinks" if "sinks" in args else "rotation_audit_sinks")
        if problems:
            raise AnsibleActionFail("audit_event: " + "; ".join(problems))
        try:
            entry = _audit.make_entry(
                args["credential"], args["event"], consumer=args.get("consumer"),
                key_id=args.get("key_id"), previous_key_id=args.get("previous_key_id"),
                incident=args.get("incident"), details=args.get("details"),
                actor_name=args.get("actor") or _audit.actor(variables=task_vars))
        except ValueError as exc:
            raise AnsibleActionFail("audit_event: %s" % exc)
        if self._task.check_mode:
            result.update(changed=False, entry=entry, path=path, skipped_write=True)
            return result
        result.update(changed=True, entry=entry, path=_audit.append(path, entry))
        if not sinks and task_vars.get("awx_job_id") and not os.path.isabs(os.path.expanduser(path)):
            display.warning("The audit trail goes to %s in the AWX job's working directory and is lost with the job's "
                            "container: set rotation_audit_sinks (syslog, http) or rotation_audit_log on persistent "
                            "storage." % path)
        warnings, errors = _audit_sinks.deliver(sinks, entry)
        if warnings:
            result["warnings"] = warnings
        if errors:
            raise AnsibleActionFail("audit_event: " + "; ".join(errors) + " (written to %s)" % result["path"])
        result["sinks"] = len(sinks or [])
        return result
