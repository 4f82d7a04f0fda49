# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Mirrors AUDIT_ARGSPEC in plugins/module_utils/_module.py.
    DOCUMENTATION = r"""
options:
  audit:
    description:
      - Record what this task did in the audit trail, in the same task, as
        M(credops.rotation.audit_event) would in a task of its own. The entry goes to the file
        C(rotation_audit_log) (default C(./rotation-audit.jsonl)) and to the sinks of
        C(rotation_audit_sinks), with the actor of the run.
      - The entry names the credential, the event, the key ids and non-secret facts, never a
        value. Nothing is recorded in check mode or when the task fails.
      - The entry is written on the controller, wherever the module runs.
      - The trail file is opened before the module acts, so a trail that cannot be written
        stops the task before anything changes. When the step was done but its entry cannot be
        written (a full disk, a required sink down), the task fails and says so; the step is not
        undone.
      - Not for an C(async) task (its result comes later, from M(ansible.builtin.async_status)).
    type: dict
    suboptions:
      incident:
        description:
          - The incident id the entry carries (an emergency rotation's C(-e incident=...)).
        type: str
      previous_key_id:
        description:
          - The key id of the value this one replaces, for the entry.
        type: str
      details:
        description:
          - More non-secret facts for the entry's C(details), beside the module's own.
          - A key that names a secret (C(secret), C(value), C(password), C(token), ...) is refused
            before anything changes.
        type: dict
        default: {}
"""
