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
or with ``rotation_run_in_process: false``, the module runs the usual way.

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
import sys

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action.normal import ActionModule as NormalAction
from ansible.utils.display import Display
from ansible.vars.clean import remove_internal_keys

display = Display()

SWITCH = "rotation_run_in_process"
AUTO_INTERPRETERS = ("auto", "auto_legacy", "auto_silent", "auto_legacy_silent")


def _hooks():
    """What in-process execution needs from ansible-core (2.19.1+), or None on older cores."""
    try:
        from ansible.module_utils import _internal, basic
        from ansible.module_utils.common import warnings
        from ansible.module_utils.common.json import Direction, get_module_encoder
    except ImportError:
        return None
    if not hasattr(basic.AnsibleModule, "_record_module_result") or not hasattr(basic, "_ANSIBLE_PROFILE"):
        return None
    return dict(internal=_internal, basic=basic, warnings=warnings, direction=Direction, encoder=get_module_encoder)


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
        reason = self._why_not_in_process(task_vars)
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
            return "ansible-core before 2.19.1"
        return None

    def _run_in_process(self, task_vars):
        hooks = _hooks()
        basic, internal, warnings = hooks["basic"], hooks["internal"], hooks["warnings"]
        module_name = self._task.resolved_action or self._task.action
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
        data = self._parse_returned_data(dict(rc=rc, stdout=recorded[-1], stderr=""), self.PROFILE)
        remove_internal_keys(data)
        return data

    @staticmethod
    def _module_import_name(module_name):
        namespace, collection, leaf = module_name.split(".")[-3:]
        return "ansible_collections.%s.%s.plugins.modules.%s" % (namespace, collection, leaf)
