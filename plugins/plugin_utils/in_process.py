# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one of this collection's modules inside the controller's worker process.

Every step of a rotation runs its modules on the controller (``hosts: localhost`` or
``delegate_to: localhost``). Ansible would build an AnsiballZ payload for each module (about
0.3 to 0.5 s, once per module and run), start a new Python for each call and import
``ansible.module_utils.basic`` there again. For an emergency that is most of the time between
starting the playbook and the revocation.

When the task runs on the controller itself (connection ``local``, no become, no async, no
task ``environment``, the controller's own Python), this action calls the module's ``main()``
in the worker Ansible already forked for the task: the same module code, the same
``AnsibleModule`` argument checks, the same ``no_log`` masking and the same result parsing
(the result is serialised with the module's profile and read back with the controller's
``_parse_returned_data``, exactly as when it comes from a module process). Anywhere else,
or with ``rotation_run_in_process: false``, the module runs the usual way. It also runs the
usual way on every ansible-core release not in ``PROVEN_CORES``: the worker's internals change
between releases (2.21 reworked the result handling), so a release is added only once the test
matrix (noxfile.py) ran tests/integration/test_in_process.py on it.

A module with the option ``audit`` (issue_key, secret_store, revoke_key) names the audit entry of
what it did in ``audit_entries``; this action writes it to the trail (plugin_utils/audit.py) on the
controller, wherever the module ran, and takes it out of the result: the step and its entry in one
task. The trail is opened before the module runs.

ansible.netcommon runs network modules in its worker the same way (``import_modules``);
ansible-core keeps ``AnsibleModule._record_module_result`` as the hook for it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import importlib
import io
import json
import os
import re
import sys

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action.normal import ActionModule as NormalAction
from ansible.release import __version__ as ANSIBLE_CORE_VERSION
from ansible.utils.display import Display

from ansible_collections.credops.rotation.plugins.plugin_utils.audit import Trail

display = Display()

SWITCH = "rotation_run_in_process"
AUTO_INTERPRETERS = ("auto", "auto_legacy", "auto_silent", "auto_legacy_silent")

# The ansible-core releases (major, minor) whose worker internals this file was proven against
# (tests/integration/test_in_process.py runs on each in the nox matrix). On any other release
# the module runs as a module process, the public way: slower, never broken.
PROVEN_CORES = ((2, 19), (2, 20), (2, 21))


def _core_release(version=ANSIBLE_CORE_VERSION):
    """(major, minor) of an ansible-core version string, or None when it cannot be read."""
    match = re.match(r"(\d+)\.(\d+)", str(version))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _hooks(version=ANSIBLE_CORE_VERSION):
    """What in-process execution needs from ansible-core, or None on a release it was not proven
    on (or one that lacks any of it: 2.19.0 has no ``_record_module_result``)."""
    if _core_release(version) not in PROVEN_CORES:
        return None
    try:
        from ansible.module_utils import _internal, basic
        from ansible.module_utils.common import warnings
        from ansible.module_utils.common.json import Direction, get_module_encoder
    except ImportError:
        return None
    if not hasattr(basic.AnsibleModule, "_record_module_result") or not hasattr(basic, "_ANSIBLE_PROFILE") \
            or not hasattr(warnings, "_global_warnings") or not hasattr(_internal, "is_controller"):
        return None
    return dict(internal=_internal, basic=basic, warnings=warnings, direction=Direction, encoder=get_module_encoder)


def _result_dict(parsed):
    """The task result from what ``_parse_returned_data`` gave, cleaned as ``_execute_module``
    cleans it: a dict up to 2.20, a ``UnifiedTaskResult`` from 2.21 on."""
    if hasattr(parsed, "as_result_dict"):
        parsed.remove_internal_keys()
        return parsed.as_result_dict(for_round_trip=True)
    from ansible.vars.clean import remove_internal_keys  # up to 2.20
    remove_internal_keys(parsed)
    return parsed


def _same_python(path, executable):
    """True when ``path`` starts the same Python, in the same environment, as ``executable``:
    the same file (``python`` and ``python3`` in one virtualenv both are) in the same folder (a
    virtualenv's ``bin/python`` links to its base Python, whose packages differ)."""
    try:
        return os.path.dirname(os.path.abspath(path)) == os.path.dirname(os.path.abspath(executable)) and \
            os.path.samefile(path, executable)
    except OSError:
        return False


class InProcessModuleAction(NormalAction):
    """The action of a module of this collection: in the worker when the task runs on the
    controller, the usual way anywhere else."""

    PROFILE = "legacy"  # the modules of this collection declare no other serialisation profile

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        # the module's option ``audit``: where its entry goes is checked before the module acts
        trail = None
        if isinstance(self._task.args.get("audit"), dict) and not self._task.check_mode:
            if self._task.async_val:
                raise AnsibleActionFail("%s: audit is not written for an async task (its result comes later, from "
                                        "async_status): run it without async, or record it with audit_event"
                                        % self._task.action)
            trail = Trail(task_vars, self._templar, who=self._task.action)
            trail.ready()
        return self._write_audit(trail, self._run_module(tmp, task_vars))

    def _write_audit(self, trail, result):
        """``result`` once the entries the module named in ``audit_entries`` are written to the
        trail (not when the task failed); a trail that cannot be written fails the task, which says
        that the step itself was done."""
        entries = result.pop("audit_entries", None)
        if trail is None or not entries or result.get("failed"):
            return result
        try:
            written, warnings = trail.write([trail.entry(one) for one in entries])
        except (AnsibleActionFail, ValueError, EnvironmentError) as exc:
            result.update(failed=True, msg="%s (done), but its audit entry could not be written: %s" % (
                str(result.get("msg") or self._task.action).rstrip("."), exc))
            return result
        result.update(audit_path=written, audit_events=[one["event"] for one in entries])
        if warnings:
            result["warnings"] = list(result.get("warnings") or []) + warnings
        return result

    def _run_module(self, tmp, task_vars):
        try:
            reason = self._why_not_in_process(task_vars)
        except Exception as exc:  # never a crash: the module process is always there
            reason = "could not decide (%s)" % type(exc).__name__
        if reason:
            display.vvvv("%s: module process (%s)" % (self._task.action, reason))
            return super(InProcessModuleAction, self).run(tmp, task_vars)
        display.vvv("%s: running in the controller's worker (connection local)" % self._task.action)
        result = super(NormalAction, self).run(tmp, task_vars)  # ActionBase: checks check_mode/async support
        result.update(self._run_in_process(task_vars))
        return result

    def _host_vars(self, task_vars):
        if self._task.delegate_to:
            return (task_vars.get("ansible_delegated_vars") or {}).get(self._task.delegate_to) or {}
        return task_vars

    def _why_not_in_process(self, task_vars):
        """None when the module may run in this worker, else why not (for -vvvv)."""
        if not boolean(self._templar.template(task_vars.get(SWITCH, True)), strict=False):
            return "%s is false" % SWITCH
        if getattr(self._connection, "transport", None) != "local":
            return "connection %s" % getattr(self._connection, "transport", None)
        if self._task.async_val:
            return "async"
        if self._play_context.become:
            return "become"
        environment = {}
        self._compute_environment_string(environment)
        if environment:
            return "task environment"
        interpreter = self._host_vars(task_vars).get("ansible_python_interpreter")
        if interpreter is not None:
            interpreter = str(self._templar.template(interpreter)).strip()
            if interpreter not in AUTO_INTERPRETERS and not _same_python(interpreter, sys.executable):
                return "interpreter %s is not the controller's %s" % (interpreter, sys.executable)
        if _hooks() is None:
            return "in-process execution is not proven on ansible-core %s" % ANSIBLE_CORE_VERSION
        return None

    def _run_in_process(self, task_vars):
        hooks = _hooks()
        basic, internal, warnings = hooks["basic"], hooks["internal"], hooks["warnings"]
        module_name = self._module_fqcn()
        args = copy.deepcopy(dict(self._task.args))
        self._update_module_args(module_name, args, task_vars)
        # what a module process would read from its payload
        payload = json.dumps({"ANSIBLE_MODULE_ARGS": args},
                             cls=hooks["encoder"](self.PROFILE, hooks["direction"].CONTROLLER_TO_MODULE))
        recorded = []

        def record(module, result):
            recorded.append(json.dumps(result, cls=hooks["encoder"](self.PROFILE, hooks["direction"].MODULE_TO_CONTROLLER)))

        saved = (basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE, basic.AnsibleModule._record_module_result,
                 internal.is_controller, sys.stdout)
        stray = io.StringIO()
        rc = 0
        try:
            basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = payload.encode("utf-8"), self.PROFILE
            basic.AnsibleModule._record_module_result = record
            internal.is_controller = False  # module.warn() goes into the result, as from a module process
            warnings._global_warnings.clear()
            warnings._global_deprecations.clear()
            sys.stdout = stray
            module = importlib.import_module(self._module_import_name(module_name))
            try:
                module.main()
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
        except Exception as exc:  # a bug outside the module's own handling: its text may hold a value
            return dict(failed=True, msg="%s: unexpected %s while running in the controller's worker; "
                        "re-run with -e %s=false for the module's own report." % (module_name, type(exc).__name__, SWITCH))
        finally:
            (basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE, basic.AnsibleModule._record_module_result,
             internal.is_controller, sys.stdout) = saved
        if not recorded:
            return dict(failed=True, rc=rc, msg="%s returned no result in the controller's worker." % module_name)
        returned = dict(rc=rc, stdout=recorded[-1], stderr="", stdout_lines=recorded[-1].splitlines(), stderr_lines=[])
        return _result_dict(self._parse_returned_data(returned, self.PROFILE))

    def _module_fqcn(self):
        """The module this task runs: one action plugin serves every module of the collection
        (meta/runtime.yml routes each module's ``action_plugin`` to it), so the module is the
        task's action as the module loader resolves it (``resolved_action`` can name this action
        plugin instead: ansible-core 2.17 sets it so when it parses the task)."""
        context = self._shared_loader_obj.module_loader.find_plugin_with_context(
            self._task.action, collection_list=self._task.collections)
        return context.resolved_fqcn if context.resolved else (self._task.resolved_action or self._task.action)

    @staticmethod
    def _module_import_name(module_name):
        namespace, collection, leaf = module_name.split(".")[-3:]
        return "ansible_collections.%s.%s.plugins.modules.%s" % (namespace, collection, leaf)
