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
                             "previous_key_id", "incident", "details", "actor", "sinks", "entries"))
    _ENTRY_KEYS = frozenset(("credential", "event", "consumer", "key_id", "previous_key_id", "incident", "details"))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        many = args.get("entries") is not None
        if many and not isinstance(args["entries"], list):
            raise AnsibleActionFail("audit_event: entries must be a list of dicts")
        items = args["entries"] if many else [args]
        path = args.get("path") or task_vars.get("rotation_audit_log") or DEFAULT_PATH
        sinks = args["sinks"] if "sinks" in args else self._templar.template(task_vars.get("rotation_audit_sinks"))
        problems = _audit_sinks.problems(sinks, "sinks" if "sinks" in args else "rotation_audit_sinks")
        if problems:
            raise AnsibleActionFail("audit_event: " + "; ".join(problems))
        actor_name = args.get("actor") or _audit.actor(variables=task_vars)
        entries = []
        for number, item in enumerate(items):
            where = "entries[%d] " % number if many else ""
            if not isinstance(item, dict):
                raise AnsibleActionFail("audit_event: %sis not a dict" % where)
            unknown = sorted(set(item) - self._ENTRY_KEYS) if many else []
            if unknown:
                raise AnsibleActionFail("audit_event: %shas unknown fields %s" % (where, ", ".join(unknown)))
            for required in ("credential", "event"):
                if not item.get(required):
                    raise AnsibleActionFail("audit_event: %s%s is required" % (where, required))
            try:
                entries.append(_audit.make_entry(
                    item["credential"], item["event"], consumer=item.get("consumer"),
                    key_id=item.get("key_id"), previous_key_id=item.get("previous_key_id"),
                    incident=item.get("incident") or args.get("incident"), details=item.get("details"),
                    actor_name=actor_name))
            except ValueError as exc:
                raise AnsibleActionFail("audit_event: %s%s" % (where, exc))
        if many:
            result["entries"] = entries
        entry = entries[-1] if entries else None
        if self._task.check_mode:
            result.update(changed=False, path=path, skipped_write=True)
            if entry is not None:
                result["entry"] = entry
            return result
        if not entries:
            result.update(changed=False, path=path)
            return result
        for one in entries:
            written = _audit.append(path, one)
        result.update(changed=True, entry=entry, path=written)
        if not sinks and task_vars.get("awx_job_id") and not os.path.isabs(os.path.expanduser(path)):
            display.warning("The audit trail goes to %s in the AWX job's working directory and is lost with the job's "
                            "container: set rotation_audit_sinks (syslog, http) or rotation_audit_log on persistent "
                            "storage." % path)
        warnings, errors = [], []
        for one in entries:
            more_warnings, more_errors = _audit_sinks.deliver(sinks, one)
            warnings.extend(more_warnings)
            errors.extend(more_errors)
        if warnings:
            result["warnings"] = warnings
        if errors:
            raise AnsibleActionFail("audit_event: " + "; ".join(errors) + " (written to %s)" % result["path"])
        result["sinks"] = len(sinks or [])
        return result
