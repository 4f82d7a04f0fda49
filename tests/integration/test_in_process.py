"""The collection's modules run in the controller's worker when their task runs there
(plugins/plugin_utils/in_process.py), and as a module process anywhere else.

Both ways must give the same result: the same return values, the same masking of no_log
values, the same warnings, the same errors for bad input. The tests run one playbook both
ways (``rotation_run_in_process`` true and false) at -vvvv and compare what they registered,
and search every byte of the output for the planted values. No service is needed: the
modules used here (webhook_secret, assess_scope with a generated issuer) compute locally.
"""
import collections
import json
import re
import secrets
import sys

import pytest
from ansible.release import __version__ as ANSIBLE_CORE_VERSION

from ansible_collections.credops.rotation.plugins.plugin_utils.in_process import PROVEN_CORES, _core_release
from tests.lab.ansible_runner import run_playbook

IN_WORKER = "running in the controller's worker"
AS_PROCESS = "module process ("


PLANTED = "whsec_planted_" + secrets.token_hex(12)


def _play(out, extra_task=None):
    planted = PLANTED
    payload = '{"event": "in-process-parity"}'
    tasks = [
        {"name": "sign", "credops.rotation.webhook_secret": {
            "action": "sign", "secret": planted, "payload": payload, "timestamp": 1700000000},
         "register": "sign"},
        {"name": "verify", "credops.rotation.webhook_secret": {
            "action": "verify", "accepted_secrets": ["whsec_other_" + "x" * 20, planted], "payload": payload,
            "header": "{{ sign.header }}", "signature": "{{ sign.signature }}", "timestamp": 1700000000,
            "tolerance": 0},
         "register": "verify"},
        {"name": "bad option type", "credops.rotation.webhook_secret": {
            "action": "sign", "secret": planted, "payload": payload, "tolerance": "not-a-number"},
         "register": "bad_type", "ignore_errors": True},
        {"name": "generate without no_log", "credops.rotation.webhook_secret": {"action": "generate"},
         "register": "generate_visible", "ignore_errors": True},
        {"name": "generate", "credops.rotation.webhook_secret": {"action": "generate", "prefix": "whsec_"},
         "register": "generated", "no_log": True},
        {"name": "warnings", "credops.rotation.assess_scope": {
            "credential": "parity", "issuer": {"kind": "generated"}, "key_id": "k-1",
            "since": "2026-01-01T00:00:00Z", "store_audit_log": str(out.parent / "missing-audit.log"),
            "store_path": "api-credentials/parity"},
         "register": "scope"},
        {"name": "check mode", "credops.rotation.webhook_secret": {
            "action": "sign", "secret": planted, "payload": payload, "timestamp": 1700000000},
         "register": "sign_check", "check_mode": True},
    ]
    if extra_task:
        tasks.append(extra_task)
    tasks.append({"name": "save", "ansible.builtin.copy": {
        "content": "{{ dict(sign=sign, verify=verify, bad_type=bad_type, generate_visible=generate_visible,"
                   " scope=scope, sign_check=sign_check, generated=generated.secret) | to_json }}",
        "dest": str(out)}, "no_log": True})
    return [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}], planted


def _run(tmp_path, name, in_process, extra_task=None, interpreter=sys.executable):
    out = tmp_path / (name + ".json")
    play, planted = _play(out, extra_task)
    book = tmp_path / (name + ".yml")
    book.write_text(json.dumps(play))
    proc = run_playbook(book, inventory="localhost,", verbosity=4,
                        extra_vars={"rotation_run_in_process": in_process, "ansible_python_interpreter": interpreter})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    output = proc.stdout + proc.stderr
    assert planted not in output
    saved = json.loads(out.read_text())
    generated = saved.pop("generated")
    assert len(generated) > 20 and generated not in output  # the no_log task's own value
    assert planted not in json.dumps(saved)
    return Run(saved, output)


Run = collections.namedtuple("Run", "saved output")


def _comparable(result):
    """A registered result without what legitimately differs between two runs."""
    result = json.loads(json.dumps(result))
    result.pop("invocation", None)
    return result


@pytest.fixture(scope="module")
def both_ways(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("in-process")
    return dict(worker=_run(tmp, "worker", True), process=_run(tmp, "process", False))


def test_the_worker_path_is_taken_only_when_allowed(both_ways):
    worker_out, process_out = both_ways["worker"].output, both_ways["process"].output
    if _core_release(ANSIBLE_CORE_VERSION) not in PROVEN_CORES:  # the nox matrix's older releases
        assert IN_WORKER not in worker_out
        assert worker_out.count(AS_PROCESS + "in-process execution is not proven on ansible-core") == 7
        return
    assert worker_out.count(IN_WORKER) == 7
    assert AS_PROCESS not in worker_out
    assert IN_WORKER not in process_out
    assert process_out.count(AS_PROCESS + "rotation_run_in_process is false)") == 7
    assert "AnsiballZ_webhook_secret.py" in process_out and "AnsiballZ_assess_scope.py" in process_out
    assert "AnsiballZ_webhook_secret.py" not in worker_out and "AnsiballZ_assess_scope.py" not in worker_out


@pytest.mark.parametrize("name", ["sign", "verify", "bad_type", "generate_visible", "scope", "sign_check"])
def test_both_ways_register_the_same_result(both_ways, name):
    assert _comparable(both_ways["worker"].saved[name]) == _comparable(both_ways["process"].saved[name])


def test_the_results_are_what_the_module_returns(both_ways):
    worker = both_ways["worker"].saved
    assert worker["sign"]["signature"] and not worker["sign"]["changed"]
    assert worker["verify"]["valid"] is True and worker["verify"]["matched"] == 1
    assert worker["bad_type"]["failed"] and "tolerance" in worker["bad_type"]["msg"]
    assert worker["generate_visible"]["failed"] and "no_log" in worker["generate_visible"]["msg"]
    assert worker["sign_check"]["signature"] == worker["sign"]["signature"]
    # module.warn() reaches the result, as from a module process
    assert any("no usage record" in w for w in worker["scope"]["warnings"])
    assert any("store audit log unreadable" in w for w in worker["scope"]["warnings"])
    assert PLANTED not in json.dumps(worker)


def test_no_log_options_are_masked_in_the_shown_invocation(both_ways):
    outputs = (both_ways["worker"].output, both_ways["process"].output)
    shown = [re.search(r'^\s*"?invocation"?:', output, re.M) is not None for output in outputs]  # JSON or YAML
    assert shown[0] == shown[1]  # both ways show the invocation, or neither
    # -vvvv shows each module's invocation up to ansible-core 2.20; 2.21 shows none
    assert all(shown) == (_core_release(ANSIBLE_CORE_VERSION) < (2, 21))
    for output in outputs if all(shown) else ():
        assert output.count("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER") >= 4


def test_warnings_are_shown_once(both_ways):
    for output in (both_ways["worker"].output, both_ways["process"].output):
        assert output.count("keeps no usage record for this key") == 1


@pytest.mark.parametrize("case, why", [
    ("environment", "task environment"),
    ("interpreter", "interpreter /usr/bin/python3 is not the controller's"),
])
def test_a_task_the_worker_cannot_reproduce_runs_as_a_module_process(tmp_path, case, why):
    task = {"name": "extra", "credops.rotation.webhook_secret": {"action": "phase", "current_phase": "dual_accept"},
            "register": "extra"}
    kwargs = {}
    if case == "environment":
        task["environment"] = {"CREDOPS_PARITY": "1"}
        kwargs["extra_task"] = task
    else:
        kwargs["interpreter"] = "/usr/bin/python3"  # Debian's, beside the project's virtualenv
    assert (AS_PROCESS + why) in _run(tmp_path, case, True, **kwargs).output
