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
  - One entry (O(credential), O(event) and the other options), or several in one task (O(entries),
    for example one per consumer of a host).
  - Entries carry time, credential, event, actor and, where they apply, consumer, key ids and
    incident id. They never carry a secret value; details with secret-looking keys are refused.
  - The actor is the first set of the variables C(rotation_actor), C(awx_user_name) and
    C(tower_user_name) (AWX/AAP and Tower pass the job's user as these extra variables), the
    environment variables E(ROTATION_ACTOR), E(AWX_USER_NAME), E(TOWER_USER_NAME), E(SUDO_USER),
    E(USER), else the OS user; the P(credops.rotation.actor#lookup) lookup gives the same name.
  - Each entry also goes to the durable sinks of O(sinks) (default the variable
    C(rotation_audit_sinks)), after the file - syslog/journald (what the runbook's C(logger)
    does) or an HTTP log collector. Under AWX/AAP the job's working directory, and a relative
    C(rotation_audit_log) in it, is lost with the job's container; without a sink the task warns.
  - A sink that fails gives a warning, or fails the task when the sink sets C(required=true);
    the entry is in the file either way. Messages name a sink by type and host only.
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
    description: The credential's name. Required unless O(entries) is given.
    type: str
  event:
    description: What happened. Required unless O(entries) is given.
    type: str
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
    description: Who ran the rotation, instead of the name found as described above.
    type: str
  entries:
    description:
      - Several entries, written in this order, instead of the one of O(credential) and O(event).
        Each is a dict with C(credential) and C(event) (required) and C(consumer), C(key_id),
        C(previous_key_id), C(incident), C(details); O(incident) is the default of their C(incident).
      - Every entry is checked before the first is written. An empty list writes nothing.
    type: list
    elements: dict
  sinks:
    description:
      - Where each entry goes besides the file. Defaults to the variable C(rotation_audit_sinks);
        an empty list sends nothing. Checked before anything is written; a bad field fails the
        task naming it.
    type: list
    elements: dict
    suboptions:
      type:
        description: V(syslog) (a syslog message per entry, its text the JSON entry) or V(http) (a JSON POST per entry).
        type: str
        required: true
        choices: [syslog, http]
      address:
        description: syslog - a local socket path, or C(host:port) over UDP.
        type: str
        default: /dev/log
      facility:
        description: syslog - the facility.
        type: str
        default: authpriv
        choices: [auth, authpriv, daemon, user, local0, local1, local2, local3, local4, local5, local6, local7]
      tag:
        description: syslog - the tag (C(SYSLOG_IDENTIFIER) in the journal).
        type: str
        default: credops-rotation
      url:
        description: http - the collector's URL; required for V(http).
        type: str
      headers:
        description: http - extra request headers (e.g. C(Authorization) from a lookup). Never shown.
        type: dict
      timeout:
        description: http - seconds to wait for the collector.
        type: float
        default: 5
      validate_certs:
        description: http - check the collector's TLS certificate.
        type: bool
        default: true
      ca_path:
        description: http - a CA bundle for the collector's certificate.
        type: path
      required:
        description: Fail the task when this sink cannot take the entry (the file has it already).
        type: bool
        default: false
"""

EXAMPLES = r"""
- name: Record that a consumer got the new value
  credops.rotation.audit_event:
    credential: payment-gateway-api
    event: deployed
    consumer: web-app@web1
    key_id: key_1a2b3c

# In the inventory (group_vars/all/audit.yml): every entry also to the journal and a collector
# rotation_audit_sinks:
#   - type: syslog
#   - type: http
#     url: https://logs.example.org/ingest/credops
#     headers: {Authorization: "Bearer {{ lookup('ansible.builtin.env', 'AUDIT_COLLECTOR_TOKEN') }}"}
#     required: true
"""

RETURN = r"""
entry:
  description: The entry written (the last one, with O(entries)).
  returned: when an entry was written
  type: dict
entries:
  description: The entries written, with O(entries).
  returned: when O(entries) is given
  type: list
  elements: dict
path:
  description: The audit trail file.
  returned: always
  type: str
"""
