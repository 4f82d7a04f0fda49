"""The systemd_consumer action plugin: what reaches the host, the verifications on the controller
(against a real HTTP server on 127.0.0.1), the audit entries, and a result in the shape the deploy
role records (deploy_results) - with no value anywhere. The module's own work on a systemd
host is proven in tests/integration/test_one_restart_per_service.py."""
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from unittest import mock

import pytest

from ansible_collections.credops.rotation.plugins.action import systemd_consumer as action

SECRET = "s3cr3t-VALUE-planted-action"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        status, body = {"/ok": (200, {"status": "ok"}), "/echo": (200, {"token": SECRET})}.get(self.path, (404, {}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()


def _entry(credential, name, value=SECRET, **more):
    return dict(dict(path="/etc/app/env", name=name, value=value, service="app.service", credential=credential,
                     consumer="app", key_id="id-" + credential), **more)


def _run(args, module_result, tmp_path, check_mode=False, pipelining=False, execute_command=None, task_vars=None,
         environment=None):
    """The action with the module replaced by ``module_result`` (a connection that does not
    pipeline), or, with ``pipelining``, with the program sent to ``execute_command``."""
    task = mock.MagicMock(args=args, async_val=0, check_mode=check_mode, action="credops.rotation.systemd_consumer",
                          delegate_to=None, environment=environment)
    templar = mock.MagicMock()
    templar.template.side_effect = lambda value: value
    plugin = action.ActionModule(task, mock.MagicMock(), mock.MagicMock(), mock.MagicMock(), templar, mock.MagicMock())
    plugin._load_name = "credops.rotation.systemd_consumer"
    sent = []

    def execute(module_name=None, module_args=None, task_vars=None):
        sent.append((module_name, module_args))
        return dict(module_result)
    plugin._execute_module = execute
    plugin._is_pipelining_enabled = lambda module_style, wrap_async=False: pipelining and module_style == "new"
    plugin._low_level_execute_command = execute_command
    audit = tmp_path / "audit.jsonl"
    task_vars = dict({"inventory_hostname": "web1", "rotation_audit_log": str(audit), "rotation_actor": "tester"},
                     **(task_vars or {}))
    result = plugin.run(task_vars=task_vars)
    trail = [json.loads(line) for line in audit.read_text().splitlines()] if audit.exists() else []
    return result, sent, trail


def _reported(*credentials):
    return {"changed": True, "entries": [
        {"credential": c, "consumer": "app", "changed": True, "restarted": True, "failed": False, "msg": "", "step": ""}
        for c in credentials], "services": {"app.service": {"restarted": True, "state": "active", "failed": False}}}


def test_one_task_writes_verifies_records_and_reports_like_the_role(server, tmp_path):
    entries = [_entry("a", "A", verify={"url": server + "/ok", "json": {"status": "ok"}}),
               _entry("a", "A_ID", value="id-a", verify={"url": server + "/ok"}),
               _entry("b", "B", verify={"url": server + "/echo", "json": {"token": "other"}}),
               _entry("c", "C", value=None, refused="the store holds no new value of c, so C cannot be written"),
               _entry("d", "D", verify={"url": server + "/ok"}),
               _entry("e", "E")]
    result, sent, trail = _run({"entries": entries, "skip": ["d"], "deadline": 0, "audit": True, "incident": "INC-1"},
                               _reported("a", "b", "e"), tmp_path)

    # the host gets the lines to write and nothing else: no refused, skipped, verify or key id
    assert [name for name, _args in sent] == ["credops.rotation.systemd_consumer"]
    module_args = sent[0][1]
    assert sorted(module_args) == ["entries", "timeout"] and module_args["timeout"] == 60
    assert [(e["credential"], e["name"]) for e in module_args["entries"]] == [("a", "A"), ("a", "A_ID"), ("b", "B"), ("e", "E")]
    assert all(sorted(e) == ["consumer", "credential", "name", "path", "restart", "service", "value"]
               for e in module_args["entries"])

    # deploy_results: per credential, each consumer's outcome (the role's shape)
    failed_b = next(c for c in result["consumers"] if c["credential"] == "b")
    assert result["results"]["b"] == [{"consumer": "app", "kind": "systemd", "failed": True, "changed": True,
                                       "step": "Verify | the consumer works with the value (app, new)",
                                       "error": failed_b["error"]}]
    assert result["results"]["c"] == [{"consumer": "app", "kind": "systemd", "failed": True, "changed": False,
                                       "step": "Deploy | write the value in the environment file (C in /etc/app/env)",
                                       "error": entries[3]["refused"]}]
    assert result["results"]["e"] == [{"consumer": "app", "kind": "systemd", "failed": False, "changed": True,
                                       "verified": False}]
    assert result["results"]["a"] == [{"consumer": "app", "kind": "systemd", "failed": False, "changed": True,
                                       "verified": True}]
    assert result["results"]["e"][0]["verified"] is False
    assert result["results"]["c"][0]["step"] == "Deploy | write the value in the environment file (C in /etc/app/env)"
    assert result["results"]["b"][0]["step"] == "Verify | the consumer works with the value (app, new)"
    assert "consumer 'app@web1'" in failed_b["error"] and "token: expected \"other\", got \"********\"" in failed_b["error"]
    assert result["skipped_credentials"] == ["d"] and "skipped" not in result and "d" not in result["results"]
    assert result["failed"] and result["changed"] and "b app@web1" in result["msg"] and "c app@web1" in result["msg"]

    # the audit entries the role wrote: deployed, then verified and failed, with key ids and the incident
    assert [(t["event"], t["credential"]) for t in trail] == [
        ("deployed", "a"), ("deployed", "b"), ("deployed", "e"), ("verified", "a"), ("failed", "b"), ("failed", "c")]
    assert all(t["consumer"] == "app@web1" and t["incident"] == "INC-1" and t["actor"] == "tester" for t in trail)
    assert trail[0]["key_id"] == "id-a" and trail[0]["details"] == {"which": "new", "restarted": True, "service": "app.service"}
    assert trail[3]["details"] == {"step": "verify", "attempts": 1}
    assert trail[5]["details"] == {"step": result["results"]["c"][0]["step"], "error": entries[3]["refused"]}
    assert SECRET not in json.dumps(result) and SECRET not in json.dumps(trail)


def test_a_module_that_did_not_finish_fails_every_consumer_and_nothing_is_verified(server, tmp_path):
    entries = [_entry("a", "A", verify={"url": server + "/ok"}), _entry("b", "B")]
    result, _sent, trail = _run({"entries": entries, "which": "old", "audit": True},
                                {"failed": True, "msg": "MODULE FAILURE", "module_stderr": "boom " + SECRET}, tmp_path)
    assert [(r["failed"], r["changed"], r["error"]) for rs in result["results"].values() for r in rs] == [
        (True, True, "MODULE FAILURE")] * 2
    assert [t["event"] for t in trail] == ["failed", "failed"]
    assert result["failed"] and SECRET not in json.dumps(result) and "boom ********" in result["module_stderr"]


def test_rolled_back_and_check_mode(server, tmp_path):
    entries = [_entry("a", "A", verify={"url": server + "/ok"})]
    result, _sent, trail = _run({"entries": entries, "which": "old", "audit": True}, _reported("a"), tmp_path)
    assert [t["event"] for t in trail] == ["deployed", "rolled_back"] and not result.get("failed")
    (tmp_path / "audit.jsonl").unlink()
    result, _sent, trail = _run({"entries": entries, "audit": True}, _reported("a"), tmp_path, check_mode=True)
    assert trail == [] and result["results"]["a"][0]["verified"] is True


def test_nothing_to_write_runs_no_module_and_a_bad_verify_block_fails_its_consumer(tmp_path):
    result, sent, trail = _run({"entries": [_entry("a", "A", value=None, refused="no value")]}, {}, tmp_path)
    assert sent == [] and trail == [] and result["results"]["a"][0]["error"] == "no value"
    result, _sent, _trail = _run({"entries": [_entry("a", "A", verify={"url": "ftp://x/", "method": "GET"})]},
                                 _reported("a"), tmp_path)
    assert result["results"]["a"][0]["error"] == "url must be an http:// or https:// URL with a host"
    result, _sent, _trail = _run({"entries": [_entry("a", "A", verify={"url": "http://x/", "bogus": 1})]},
                                 _reported("a"), tmp_path)
    assert "bogus" in result["results"]["a"][0]["error"]


@pytest.mark.parametrize("checks", [3, 40])
def test_checks_run_concurrently_and_bounded(server, tmp_path, checks):
    entries = [_entry("c%02d" % n, "V%02d" % n, verify={"url": server + "/ok"}) for n in range(checks)]
    running, peak, lock = [0], [0], threading.Lock()
    real = action._verify_run.run

    def counted(*args, **kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            import time
            time.sleep(0.05)
            return real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1
    with mock.patch.object(action._verify_run, "run", counted):
        result, _sent, _trail = _run({"entries": entries}, _reported(*("c%02d" % n for n in range(checks))), tmp_path)
    assert all(r[0]["verified"] for r in result["results"].values()) and len(result["results"]) == checks
    assert 1 < peak[0] <= action.MAX_PARALLEL_CHECKS


def _local_host(tmp_path, sent):
    """_low_level_execute_command run here: the command in /bin/sh, the program on its stdin, with a
    systemctl on PATH that only says the service is active."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "systemctl").write_text('#!/bin/sh\n[ "$1" = is-active ] && echo active\nexit 0\n')
    (bin_dir / "systemctl").chmod(0o755)

    def execute_command(cmd, sudoable=True, in_data=None, **kwargs):
        sent.append((cmd, sudoable, in_data))
        ran = subprocess.run(["/bin/sh", "-c", cmd], input=in_data, capture_output=True, check=False,
                             env=dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"])))
        return dict(rc=ran.returncode, stdout=ran.stdout.decode(), stderr=ran.stderr.decode())
    return execute_command


@pytest.mark.parametrize("interpreter, facts, command", [
    ("/usr/bin/python3", {}, "/usr/bin/python3 -"),
    ("auto_silent", {"discovered_interpreter_python": sys.executable}, "%s -" % sys.executable),
    (None, {}, "for p in python3 "),
])
def test_a_pipelining_connection_gets_one_program_on_stdin(server, tmp_path, interpreter, facts, command):
    env = tmp_path / "env"
    entries = [_entry("a", "A", path=str(env), verify={"url": server + "/ok"}), _entry("b", "B", path=str(env))]
    sent = []
    host_vars = dict({"ansible_facts": facts}, **({"ansible_python_interpreter": interpreter} if interpreter else {}))
    result, modules, trail = _run({"entries": entries, "audit": True}, {}, tmp_path, pipelining=True,
                                  execute_command=_local_host(tmp_path, sent), task_vars=host_vars)
    assert modules == [] and len(sent) == 1
    cmd, sudoable, in_data = sent[0]
    assert cmd.startswith(command) and sudoable and SECRET not in cmd and SECRET.encode() not in in_data
    assert env.read_text() == "A=%s\nB=%s\n" % (SECRET, SECRET)
    assert not result.get("failed") and result["changed"]
    assert result["results"]["a"] == [{"consumer": "app", "kind": "systemd", "failed": False, "changed": True,
                                       "verified": True}]
    assert result["services"]["app.service"]["restarted"] and [t["event"] for t in trail] == [
        "deployed", "deployed", "verified"]
    assert SECRET not in json.dumps(result)


def test_a_program_without_an_answer_fails_every_consumer_and_else_the_module_runs(tmp_path):
    def no_answer(cmd, sudoable=True, in_data=None, **kwargs):
        return dict(rc=1, stdout="", stderr="Traceback ...\nOSError: " + SECRET)
    result, _modules, _trail = _run({"entries": [_entry("a", "A"), _entry("b", "B")]}, {}, tmp_path, pipelining=True,
                                    execute_command=no_answer)
    assert result["failed"] and [r["error"] for rs in result["results"].values() for r in rs] == [
        "systemd_consumer: the host step gave no answer (rc 1: OSError: ********)"] * 2
    assert SECRET not in json.dumps(result)

    task_args = {"entries": [_entry("a", "A")]}
    result, modules, _trail = _run(task_args, _reported("a"), tmp_path, pipelining=False)
    assert [name for name, _args in modules] == ["credops.rotation.systemd_consumer"] and not result.get("failed")
    # the empty environment a task inherits (an imported role's: [{}]) sets nothing: the program runs
    for empty in ([{}], [{}, None], {}, []):
        result, modules, _trail = _run(task_args, {}, tmp_path, pipelining=True, execute_command=no_answer,
                                       environment=empty)
        assert modules == [] and result["failed"] and "the host step gave no answer" in result["msg"], empty
    # a task environment reaches a module, not the program: the module runs
    result, modules, _trail = _run(task_args, _reported("a"), tmp_path, pipelining=True, execute_command=no_answer,
                                   environment=[{}, {"HTTPS_PROXY": "http://127.0.0.1:3128"}])
    assert [name for name, _args in modules] == ["credops.rotation.systemd_consumer"] and not result.get("failed")
