#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: systemd_consumer
short_description: Put credentials into the environment files of systemd services and restart each service once
description:
  - Runs on a consumer host. Sets one C(NAME=value) line per entry in the entry's environment
    file, then restarts each service whose entries changed exactly once, however many
    credentials it holds, and waits until every restarted service is active again.
  - Only the assigning line of each variable is changed (the last C(NAME=) or C(export NAME=)
    line; appended when there is none); other lines, the owner and the group are kept, the mode
    is set to V(0600), and a missing file is created. Files are replaced atomically.
  - Values are written so that systemd's C(EnvironmentFile=) reads them back exactly (double
    quoted and escaped when they hold spaces, quotes, C($), C(#), backquotes or backslashes). A
    value with a newline, a carriage return or a NUL byte cannot be carried and is refused
    before any file is written.
  - Values are never returned, logged or put in a message.
  - A service that cannot be restarted, or is not active within O(timeout), fails the module;
    the result still tells, per entry, what was written and which service failed.
  - An action plugin of the same name does the host's part, then on the controller, in the same
    task, verifies each consumer that got its value (the entries' C(verify) blocks, checked as
    M(credops.rotation.verify_endpoint) checks them, several at once), records the consumers in the
    audit trail with O(audit=true) (as M(credops.rotation.audit_event) does), and returns per
    credential what happened to each consumer (RV(results)). A consumer is the entries of one
    O(entries[].credential) and O(entries[].consumer).
  - The task fails when any consumer failed (refused, not written, service not active, or not
    verified); the result still holds every consumer's outcome.
version_added: 0.1.0
author: credops.rotation maintainers (@credops)
attributes:
  check_mode:
    support: full
    description: Reports which lines would change and which services would be restarted, changes nothing.
  diff_mode:
    support: none
    description: Values are never shown, so there is no diff.
options:
  entries:
    description: The lines to set, one per environment variable.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: The environment file (the service's C(EnvironmentFile=)).
        type: path
        required: true
      name:
        description: The environment variable.
        type: str
        required: true
      value:
        description:
          - Its value. Required unless O(entries[].refused) is set.
        type: str
      service:
        description: The systemd unit that reads the file and is restarted when it changed.
        type: str
        required: true
      restart:
        description: Restart the service even when this line is unchanged (a run resumed after
          the file was written but before the restart).
        type: bool
        default: false
      credential:
        description: Credential the value belongs to (results and messages).
        type: str
        default: ''
      consumer:
        description: Consumer the entry belongs to (results and messages).
        type: str
        default: ''
      key_id:
        description:
          - The key id of the value (never the value), for the audit trail.
        type: str
      verify:
        description:
          - How to prove the consumer works with the value once its service is active again, checked
            from the controller - the options of M(credops.rotation.verify_endpoint) (C(url), C(method),
            C(status), C(json), C(validate_certs), C(ca_path), ...) except C(credential), C(consumer) and
            C(deadline), which come from the entry and O(deadline).
          - The consumer's first entry with a C(verify) counts; a consumer without one is not verified.
        type: dict
      refused:
        description:
          - Why the caller cannot give this entry's value (for example the store holds none). The entry
            is not written; its consumer is reported failed with this reason at the C(write) step.
        type: str
  timeout:
    description: Seconds to wait for each restarted service to be active.
    type: int
    default: 60
  deadline:
    description:
      - Seconds to keep trying each consumer's verification (verify_endpoint's O(credops.rotation.verify_endpoint#module:deadline)).
      - At most 16 consumers are checked at once.
    type: float
    default: 60
  skip:
    description:
      - Credentials whose entries are left out - nothing written, verified or recorded for them (a
        rolling deploy leaves out the credentials that already failed on an earlier host). Returned
        as RV(skipped_credentials).
    type: list
    elements: str
    default: []
  which:
    description:
      - Which value the entries carry, V(new) (a rotation) or V(old) (a roll back) - the audit
        event of a verified consumer (C(verified) or C(rolled_back)) and the step named when its
        verification fails.
    type: str
    choices: [new, old]
    default: new
  audit:
    description:
      - Record in the audit trail the consumers that got the value (C(deployed)), that work with it
        (C(verified), or C(rolled_back) with O(which=old)) and that failed (C(failed)) - the trail file
        is C(rotation_audit_log) and the sinks C(rotation_audit_sinks), as for M(credops.rotation.audit_event).
      - Nothing is recorded in check mode.
    type: bool
    default: false
  incident:
    description:
      - Incident id for the audit entries.
    type: str
notes:
  - The verifications and the audit trail run on the controller; only O(entries) (without
    O(entries[].verify)) and O(timeout) reach the host.
  - When the connection pipelines (C(ansible_pipelining), which the deploy role turns on), the host's
    part goes as one Python program on the connection's standard input, built from the same code
    as this module but without Ansible's module wrapper (standard library only, about 0.15 s of CPU
    less per host; the interpreter is C(ansible_python_interpreter), the one discovered earlier, or
    the first C(python3) found). Otherwise, and with C(async) or a task C(environment), this module
    runs as any module does.
  - Needs C(systemctl) on the host and the rights to write the files and restart the units
    (C(become) when not connecting as root).
'''

EXAMPLES = r'''
- name: Three credentials of one service, one restart
  credops.rotation.systemd_consumer:
    entries:
      - {path: /etc/application/environment, name: PAYMENT_API_KEY, value: "{{ payment_key }}", service: app.service}
      - {path: /etc/application/environment, name: MAPS_API_KEY, value: "{{ maps_key }}", service: app.service}
      - {path: /etc/application/environment, name: MAIL_API_KEY, value: "{{ mail_key }}", service: app.service}
    timeout: 60

- name: Deploy, verify each consumer and record it in the audit trail
  credops.rotation.systemd_consumer:
    entries:
      - path: /etc/application/environment
        name: PAYMENT_API_KEY
        value: "{{ payment_key }}"
        key_id: "{{ payment_key_id }}"
        service: app.service
        credential: payment-gateway-api
        consumer: web-app
        verify: {url: "http://127.0.0.1:8080/health", json: {payment_gateway: connected}}
    deadline: 120
    audit: true
  register: deployed
'''

RETURN = r'''
entries:
  description:
    - Per entry, in the order given, without its value.
    - C(step) names what failed for a failed entry, V(write), V(restart) or V(wait); empty otherwise.
  returned: always
  type: list
  elements: dict
  sample:
    - {credential: payment-gateway-api, consumer: web-app, path: /etc/application/environment,
       name: PAYMENT_API_KEY, service: app.service, changed: true, restarted: true, failed: false, msg: "",
       step: ""}
services:
  description: Per service, whether it was restarted, its state at the end, and the error if any.
  returned: always
  type: dict
  sample: {app.service: {restarted: true, state: active, failed: false, msg: "", waited: 0.8}}
consumers:
  description:
    - Per consumer (credential and consumer of the entries), in order - what happened to it.
    - C(step) and C(error) name what failed for a failed consumer; empty otherwise.
  returned: always
  type: list
  elements: dict
  sample:
    - {credential: payment-gateway-api, consumer: web-app, service: app.service, changed: true, restarted: true,
       failed: false, verified: true, attempts: 1, step: "", error: ""}
results:
  description:
    - Per credential, a record for each of its consumers - C(consumer), C(kind) (V(systemd)), C(failed),
      C(changed), and C(verified) for a consumer that did not fail, or the C(step) and C(error) of its failure
      (the deploy role's C(deploy_results)).
  returned: always
  type: dict
  sample:
    payment-gateway-api:
      - {consumer: web-app, kind: systemd, failed: false, changed: true, verified: true}
skipped_credentials:
  description: The credentials of O(skip) (not C(skipped), which Ansible reads as the task's own state).
  returned: always
  type: list
  elements: str
  sample: []
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.credops.rotation.plugins.module_utils import _systemd_host
from ansible_collections.credops.rotation.plugins.module_utils._systemd_consumer import argument_spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    report = _systemd_host.apply(module.params["entries"], module.params["timeout"], module.check_mode)
    if report.pop("failed"):
        module.fail_json(**report)
    report.pop("msg")
    module.exit_json(**report)


if __name__ == "__main__":
    main()
