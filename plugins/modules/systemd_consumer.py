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
  - An action plugin of the same name runs the module on the host, then on the controller, in the
    same task, verifies each consumer that got its value (the entries' C(verify) blocks, checked as
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

import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.credops.rotation.plugins.module_utils import _env_file
from ansible_collections.credops.rotation.plugins.module_utils._systemd_consumer import argument_spec

POLL_SECONDS = 0.25


def _label(entry):
    return " ".join(x for x in (entry["credential"], entry["name"]) if x) or entry["name"]


def _write(module, path, text):
    """Replace ``path`` with ``text`` atomically; a new file gets mode 0600 from the start."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(prefix=".credops-", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    module.set_mode_if_different(path, "0600", False)


def _edit_files(module, entries):
    """Set the lines, file by file. Returns {path: error} for files that could not be written."""
    by_path = {}
    for entry in entries:
        by_path.setdefault(entry["path"], []).append(entry)
    errors = {}
    for path, group in by_path.items():
        try:
            old = ""
            if os.path.exists(path):
                with open(path) as handle:
                    old = handle.read()
            new = _env_file.set_lines(old, [(e["name"], e["_line"]) for e in group])
            for entry in group:
                entry["changed"] = _env_file.set_lines(old, [(entry["name"], entry["_line"])]) != old
            mode_wrong = os.path.exists(path) and (os.stat(path).st_mode & 0o7777) != 0o600
            if (new != old or mode_wrong or not os.path.exists(path)) and not module.check_mode:
                _write(module, path, new)
        except (IOError, OSError) as exc:
            errors[path] = "cannot write %s: %s" % (path, exc.strerror or exc)
    return errors


def _is_active(module, service):
    _rc, out, _err = module.run_command(["systemctl", "is-active", service])
    return out.strip() or "unknown"


def _restart_and_wait(module, services, timeout):
    """Restart each of ``services`` once, then wait for all of them to be active."""
    outcome = {}
    for service in services:
        rc, _out, err = module.run_command(["systemctl", "restart", service])
        if rc != 0:
            outcome[service] = dict(restarted=False, state=_is_active(module, service), failed=True, waited=0.0,
                                    step="restart", msg="Unable to restart service %s: %s" % (service, err.strip() or "rc %d" % rc))
        else:
            outcome[service] = dict(restarted=True, state="", failed=False, msg="", waited=0.0)
    waiting = [s for s in services if not outcome[s]["failed"]]
    start = time.monotonic()
    deadline = start + max(timeout, 0)
    while waiting:
        for service in list(waiting):
            state = _is_active(module, service)
            outcome[service]["state"] = state
            if state == "active":
                outcome[service]["waited"] = round(time.monotonic() - start, 2)
                waiting.remove(service)
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    for service in waiting:
        outcome[service].update(failed=True, step="wait", waited=round(time.monotonic() - start, 2),
                                msg="%s is not active %d s after its restart (systemctl is-active: %s)"
                                    % (service, timeout, outcome[service]["state"]))
    return outcome


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    entries = [dict(e) for e in module.params["entries"]]
    # Everything refused before anything is written.
    refused = []
    for entry in entries:
        if entry.get("value") is None:   # the action plugin sends no refused entry here
            refused.append("%s has no value%s" % (_label(entry), ": " + entry["refused"] if entry.get("refused") else ""))
            continue
        try:
            entry["_line"] = "%s=%s" % (entry["name"], _env_file.quote(entry["value"], _label(entry)))
        except _env_file.EnvFileError as exc:
            refused.append(str(exc))
    if refused:
        module.fail_json(msg="Nothing was written: " + "; ".join(refused), entries=[], services={})

    file_errors = _edit_files(module, entries)
    services, restart = [], set()
    for entry in entries:
        if entry["service"] not in services:
            services.append(entry["service"])
        if entry["path"] in file_errors:
            continue
        if entry.get("changed") or entry["restart"]:
            restart.add(entry["service"])
    todo = [s for s in services if s in restart]
    if module.check_mode:
        outcome = dict((s, dict(restarted=True, state="", failed=False, msg="", waited=0.0)) for s in todo)
    else:
        outcome = _restart_and_wait(module, todo, module.params["timeout"])
    for service in services:
        outcome.setdefault(service, dict(restarted=False, state="", failed=False, msg="", waited=0.0))

    results = []
    for entry in entries:
        error = file_errors.get(entry["path"]) or outcome[entry["service"]]["msg"]
        step = "write" if entry["path"] in file_errors else outcome[entry["service"]].get("step", "")
        results.append(dict(credential=entry["credential"], consumer=entry["consumer"], path=entry["path"],
                            name=entry["name"], service=entry["service"], changed=bool(entry.get("changed")),
                            restarted=outcome[entry["service"]]["restarted"], failed=bool(error), msg=error,
                            step=step if error else ""))
    changed = any(r["changed"] for r in results) or any(o["restarted"] for o in outcome.values())
    errors = sorted(set(r["msg"] for r in results if r["failed"]))
    if errors:
        module.fail_json(msg="; ".join(errors), changed=changed, entries=results, services=outcome)
    module.exit_json(changed=changed, entries=results, services=outcome)


if __name__ == "__main__":
    main()
