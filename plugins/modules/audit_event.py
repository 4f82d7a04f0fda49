#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: audit_event
short_description: Append a rotation event to the JSON-lines audit trail
description:
  - Writes one JSON object per line to the audit trail on the controller
    (C(rotation_audit_log), default C(./rotation-audit.jsonl)), whatever host the task runs for.
  - Entries carry time, credential, event, actor and, where they apply, consumer, key ids and
    incident id. They never carry a secret value; details with secret-looking keys are refused.
  - The actor is AWX/Tower's user (C(AWX_USER_NAME)) when present, else the OS user.
author: credops.rotation maintainers (@credops)
version_added: 0.1.0
attributes:
  check_mode:
    support: full
    description: In check mode the entry is computed and returned, not written.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
options:
  path:
    description: The audit trail file. Defaults to the variable C(rotation_audit_log), else C(./rotation-audit.jsonl).
    type: path
  credential:
    description: The credential's name.
    type: str
    required: true
  event:
    description: What happened.
    type: str
    required: true
    choices: [started, resumed, issued, stored, deployed, verified, promoted, revoke_blocked, revoked,
              finished, rolled_back, failed, notified, scope_assessed, incident_recorded, dual_accept,
              sender_switched, old_secret_dropped, picked_up_next_run, skipped]
  consumer:
    description: The consumer (and host) the event concerns.
    type: str
  key_id:
    description: The issuer's id of the value concerned (never the value).
    type: str
  previous_key_id:
    description: The issuer's id of the value it replaces.
    type: str
  incident:
    description: The incident id, in emergencies.
    type: str
  details:
    description: Other non-secret facts (reason, step, counts).
    type: dict
  actor:
    description: Who ran the rotation, when the environment does not tell.
    type: str
"""

EXAMPLES = r"""
- name: Record that a consumer got the new value
  credops.rotation.audit_event:
    credential: payment-gateway-api
    event: deployed
    consumer: web-app@web1
    key_id: key_1a2b3c
"""

RETURN = r"""
entry:
  description: The entry written.
  returned: always
  type: dict
path:
  description: The audit trail file.
  returned: always
  type: str
"""
