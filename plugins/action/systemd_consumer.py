# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of systemd_consumer: the files are written and the services restarted on the
consumer host; then, on the controller, in this one task:

- each consumer whose lines were written and whose service is active is verified with its
  ``verify`` block (what verify_endpoint does: module_utils/_verify_run), at most
  ``MAX_PARALLEL_CHECKS`` at once;
- with ``audit``, the consumers that got the value (``deployed``), that work with it (``verified``,
  or ``rolled_back`` for the old value) and that failed (``failed``) are recorded in the audit trail
  (``rotation_audit_log``, ``rotation_audit_sinks``), as audit_event records them;
- the result says per credential what happened to each consumer (``results``: the deploy role's
  ``deploy_results``).

On the host, when the connection pipelines (ansible_pipelining, which the deploy role turns on), the
host's work (module_utils/_systemd_host, standard library only) goes as one Python program on the
connection's stdin, as pipelining sends a module but without the AnsiballZ wrapper and
ansible.module_utils.basic (plugin_utils/host_program: about 0.15 s of CPU less per host, which is
what ten hosts restarting at once wait for); otherwise, with async or with a task environment that
sets a variable, the module runs the same code as any module does.

The task fails when any consumer failed; its result still holds every consumer's. No value is in
the result, a message or the audit trail: the values go to the module only, and every text that
comes back is scrubbed of them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.credops.rotation.plugins.module_utils import _env_file, _systemd_consumer, _systemd_host, _verify_run
from ansible_collections.credops.rotation.plugins.module_utils._errors import scrub
from ansible_collections.credops.rotation.plugins.plugin_utils import host_program, systemd_deploy
from ansible_collections.credops.rotation.plugins.plugin_utils.audit import Trail

MODULE = "credops.rotation.systemd_consumer"
MAX_PARALLEL_CHECKS = 16
KIND = "systemd"


def consumers_of(entries):
    """The (credential, consumer) pairs of ``entries``, in order, with what names them on the host
    (the first entry of a consumer is its value's line) and its key id, verify block and refusal."""
    consumers, seen = [], {}
    for entry in entries:
        key = (entry["credential"], entry["consumer"])
        if key not in seen:
            seen[key] = dict(credential=entry["credential"], consumer=entry["consumer"], kind=KIND,
                             service=entry["service"], env_var=entry["name"], env_file=entry["path"],
                             key_id=entry.get("key_id"), verify=entry.get("verify"), refused=entry.get("refused"))
            consumers.append(seen[key])
        elif entry.get("refused") and not seen[key]["refused"]:
            seen[key]["refused"] = entry["refused"]
    return consumers


def verify_params(spec, credential, consumer, deadline):
    """verify_endpoint's parameters for a consumer's verify block (its options, their defaults and
    types), or an error message."""
    params = dict(spec or {}, credential=credential, consumer=consumer, deadline=deadline)
    validated = ArgumentSpecValidator(_verify_run.argument_spec()).validate(params)
    if validated.error_messages:
        return None, "verify: " + "; ".join(validated.error_messages)
    params = validated.validated_parameters
    problem = _verify_run.problems(params)
    return (None, problem["msg"]) if problem else (params, None)


def check(params, values):
    """One consumer's verification: verify_endpoint's result (``failed`` and ``msg`` when it did not
    hold), nothing in it of ``values`` (the values deployed) or of the verify block's own secrets."""
    warnings = []
    secrets = sorted(set(values) | set(_verify_run.secret_values(params, _verify_run.request_headers(params))))
    try:
        result = _verify_run.run(params, warn=warnings.append, secrets=secrets)
    except Exception as exc:  # a bug, or a library error nobody turned into a failure: the consumer failed
        result = dict(ok=False, attempts=0, msg="consumer '%s': verify: unexpected %s: %s"
                      % (params["consumer"], type(exc).__name__, scrub(exc, secrets)))
    result["failed"] = bool(result.get("msg"))
    if warnings:
        result["warnings"] = warnings
    return result


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=_systemd_consumer.argument_spec())
        host = task_vars.get("inventory_hostname") or ""
        skip = set(args["skip"])
        entries = [e for e in args["entries"] if e["credential"] not in skip]
        values = sorted(set(e["value"] for e in entries if isinstance(e.get("value"), str) and e["value"]))
        which = args["which"]
        trail = Trail(task_vars, self._templar, who="systemd_consumer") if args["audit"] else None
        warnings = []

        consumers = consumers_of(entries)
        writes = [e for e in entries if not e.get("refused")]
        report = dict(entries=[], services={})
        if writes:
            report = self._host_step(task_vars, _systemd_consumer.module_args(args, writes))
            warnings.extend(report.get("warnings") or [])
        rows = systemd_deploy.outcome(consumers, report)
        for row in rows:  # a host's error text (the last line of a crash, say) never carries a value
            row["error"] = scrub(row["error"], values) if row["error"] else row["error"]
        self._record(trail, [systemd_deploy.audit_entry(r, "deployed", host, r["key_id"], which)
                             for r in rows if not r["failed"] and r["restarted"]], args["incident"], warnings)

        checks = self._verify(rows, host, args["deadline"], values)
        for one in checks.values():
            warnings.extend(one.pop("warnings", []))
        record = systemd_deploy.record(rows, checks, which)
        key_ids = dict(((r["credential"], r["consumer"]), r["key_id"]) for r in rows)
        self._record(trail, [systemd_deploy.audit_entry(r, "verified" if which == "new" else "rolled_back", host,
                                                        key_ids[(r["credential"], r["consumer"])], which)
                             for r in record["verified"]]
                     + [systemd_deploy.audit_entry(r, "failed", host, key_ids[(r["credential"], r["consumer"])], which)
                        for r in record["failed"]], args["incident"], warnings)

        result.update(
            changed=bool(report.get("changed")) or any(r["changed"] for r in rows),
            entries=report.get("entries") or [],
            services=report.get("services") or {},
            consumers=[self._consumer_result(r, checks.get((r["credential"], r["consumer"])), record) for r in rows],
            results=record["results"],
            skipped_credentials=sorted(skip),
        )
        if warnings:  # the module's (already masked, maybe ansible-core's own type) and the checks' texts
            result["warnings"] = [scrub(w, values) if isinstance(w, str) else w for w in warnings]
        if report.get("deprecations"):
            result["deprecations"] = report["deprecations"]
        if record["failed"]:
            result.update(failed=True, msg=scrub("; ".join(
                "%s %s@%s: %s" % (f["credential"], f["consumer"], host, f["error"]) for f in record["failed"]), values))
            for key in ("module_stdout", "module_stderr", "exception"):
                if report.get(key):
                    result[key] = scrub(report[key], values)
        return result

    def _host_step(self, task_vars, module_args):
        """The host's report (_systemd_host.apply's, or the module's result): one program on stdin
        when the connection pipelines, else (or with async, or a task environment) the module."""
        if self._task.async_val or self._has_environment() or not self._is_pipelining_enabled("new"):
            return self._execute_module(module_name=MODULE, task_vars=task_vars, module_args=module_args)
        program = host_program.program([_env_file, _systemd_host], "apply",
                                       dict(module_args, check_mode=bool(self._task.check_mode)))
        ran = self._low_level_execute_command(host_program.command(self._interpreter(task_vars)), sudoable=True,
                                              in_data=program.encode("utf-8"))
        report, why = host_program.answer(ran)
        if report is None:
            return dict(failed=True, msg="systemd_consumer: the host step gave no answer (%s)" % why,
                        module_stdout=ran.get("stdout") or "", module_stderr=ran.get("stderr") or "")
        return report

    def _has_environment(self):
        """Whether the task sets any environment variable (its ``environment``, or one inherited from
        its block, role or play). A task with none still holds empty entries (``[{}]`` under an
        imported role, say), which a module would ignore: so does this test, as
        ActionBase._compute_environment_string does."""
        found = self._task.environment
        for one in found if isinstance(found, list) else [found]:
            if one and self._templar.template(one):
                return True
        return False

    def _interpreter(self, task_vars):
        """The host's Python as the module would use it: ansible_python_interpreter when it names
        one, else the one discovered earlier; None when neither (the program then tries the usual ones)."""
        host_vars = task_vars
        if self._task.delegate_to:
            host_vars = (task_vars.get("ansible_delegated_vars") or {}).get(self._task.delegate_to) or task_vars
        value = host_vars.get("ansible_python_interpreter")
        if value:
            value = self._templar.template(value)
        if value and not str(value).startswith("auto"):
            return str(value)
        return (host_vars.get("ansible_facts") or {}).get("discovered_interpreter_python") or None

    def _verify(self, rows, host, deadline, values):
        """{(credential, consumer): verify_endpoint's result} for each consumer deployed with a
        verify block, checked concurrently."""
        checks, runs = {}, {}
        for row in rows:
            if row["failed"] or not row.get("verify"):
                continue
            key = (row["credential"], row["consumer"])
            params, error = verify_params(row["verify"], row["credential"], "%s@%s" % (row["consumer"], host), deadline)
            if error is None:
                runs[key] = params
            else:
                checks[key] = dict(failed=True, ok=False, attempts=0, msg=scrub(error, values))
        if runs:
            with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CHECKS, len(runs))) as pool:
                futures = dict((key, pool.submit(check, params, values)) for key, params in runs.items())
                for key, future in futures.items():
                    checks[key] = future.result()
        return checks

    def _record(self, trail, items, incident, warnings):
        if trail is None or not items or self._task.check_mode:
            return
        try:
            entries = [trail.entry(item, incident=incident) for item in items]
        except ValueError as exc:
            raise AnsibleActionFail("systemd_consumer: audit: %s" % exc)
        try:
            warnings.extend(trail.write(entries)[1])
        except (IOError, OSError) as exc:
            raise AnsibleActionFail("systemd_consumer: the audit trail %s cannot be written: %s"
                                    % (trail.path, exc.strerror or exc))

    @staticmethod
    def _consumer_result(row, check, record):
        failed = next((f for f in record["failed"]
                       if (f["credential"], f["consumer"]) == (row["credential"], row["consumer"])), None)
        return dict(credential=row["credential"], consumer=row["consumer"], service=row["service"],
                    changed=row["changed"], restarted=row["restarted"], failed=failed is not None,
                    verified=check is not None and not check.get("failed"),
                    attempts=(check or {}).get("attempts", 0),
                    step=failed["step"] if failed else "", error=failed["error"] if failed else "")
