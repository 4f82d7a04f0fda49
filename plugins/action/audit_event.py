# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin: append an event to the controller's JSON-lines audit trail, and send it to
the durable sinks of ``rotation_audit_sinks`` (syslog/journald, an HTTP collector)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.credops.rotation.plugins.plugin_utils.audit import Trail


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
        trail = Trail(task_vars, self._templar, args)
        path = trail.path
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
                entries.append(trail.entry(item, incident=args.get("incident")))
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
        written, warnings = trail.write(entries)
        result.update(changed=True, entry=entry, path=written)
        if warnings:
            result["warnings"] = warnings
        result["sinks"] = len(trail.sinks or [])
        return result
