# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing audit entries from an action plugin (controller side): where they go (the trail file
``rotation_audit_log``, the sinks ``rotation_audit_sinks``, the actor), and the writing itself.
Used by the audit_event action and by the systemd_consumer action, which records the consumers
it deployed and verified."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleActionFail
from ansible.utils.display import Display

from ansible_collections.credops.rotation.plugins.module_utils import _audit, _audit_sinks

display = Display()

DEFAULT_PATH = "./rotation-audit.jsonl"


class Trail(object):
    """Where a task's audit entries go: ``path``, ``sinks`` and the ``actor`` they name. ``args``
    may set path, sinks and actor (audit_event's options); the task's variables fill in the rest."""

    def __init__(self, task_vars, templar, args=None, who="audit_event"):
        args = args or {}
        self.who = who
        self.path = args.get("path") or task_vars.get("rotation_audit_log") or DEFAULT_PATH
        self.sinks = args["sinks"] if "sinks" in args else templar.template(task_vars.get("rotation_audit_sinks"))
        problems = _audit_sinks.problems(self.sinks, "sinks" if "sinks" in args else "rotation_audit_sinks")
        if problems:
            raise AnsibleActionFail("%s: %s" % (who, "; ".join(problems)))
        self.actor = args.get("actor") or _audit.actor(variables=task_vars)
        self.awx = bool(task_vars.get("awx_job_id"))

    def ready(self):
        """Raise AnsibleActionFail when the trail file cannot be opened for appending: checked by a
        module's ``audit`` before the module acts (a full disk still shows only at the write)."""
        try:
            os.close(_audit.open_for_append(self.path)[1])
        except EnvironmentError as exc:
            raise AnsibleActionFail("%s: the audit trail %s cannot be written: %s" % (self.who, self.path, exc))

    def entry(self, item, incident=None):
        """The trail entry of ``item`` ({credential, event, consumer, key_id, previous_key_id,
        incident, details}); ValueError for an unknown event or a secret field in details."""
        return _audit.make_entry(
            item["credential"], item["event"], consumer=item.get("consumer"), key_id=item.get("key_id"),
            previous_key_id=item.get("previous_key_id"), incident=item.get("incident") or incident,
            details=item.get("details"), actor_name=self.actor)

    def write(self, entries):
        """Append ``entries`` to the file, then send each to the sinks. Returns (the file's path,
        warnings); a required sink that failed raises AnsibleActionFail (after the file entry)."""
        written = self.path
        for one in entries:
            written = _audit.append(self.path, one)
        if entries and not self.sinks and self.awx and not os.path.isabs(os.path.expanduser(self.path)):
            display.warning("The audit trail goes to %s in the AWX job's working directory and is lost with the job's "
                            "container: set rotation_audit_sinks (syslog, http) or rotation_audit_log on persistent "
                            "storage." % self.path)
        warnings, errors = [], []
        for one in entries:
            more_warnings, more_errors = _audit_sinks.deliver(self.sinks, one)
            warnings.extend(more_warnings)
            errors.extend(more_errors)
        if errors:
            raise AnsibleActionFail("%s: %s (written to %s)" % (self.who, "; ".join(errors), written))
        return written, warnings
