"""What systemd_consumer does on the host (module_utils/_systemd_host), and the program the action
plugin sends there when the connection pipelines (plugin_utils/host_program): run here for real,
with the Debian python3 that has no Ansible (so the program can only use the standard library) and
a `systemctl` on PATH that records its calls. On the lab's systemd hosts, both ways are proven in
tests/integration/test_one_restart_per_service.py."""
import base64
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.credops.rotation.plugins.module_utils import _env_file, _systemd_host
from ansible_collections.credops.rotation.plugins.plugin_utils import host_program

SECRET = 'pl4nted "host" $VALUE `x` #1 \\ end'
SYSTEM_PYTHON = "/usr/bin/python3"
SYSTEMCTL = """#!/bin/sh
echo "$@" >> "$CALLS"
case "$1 $2" in
  "restart broken.service") echo "Job for broken.service failed." >&2; exit 1 ;;
  "is-active broken.service") echo failed; exit 3 ;;
  "is-active "*) echo active ;;
esac
exit 0
"""


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A PATH whose systemctl records its calls in tmp_path/calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bin_dir, os.environ["PATH"]))
    monkeypatch.setenv("CALLS", str(tmp_path / "calls"))

    def calls():
        path = tmp_path / "calls"
        return path.read_text().splitlines() if path.exists() else []
    return calls


def _entry(path, name, value=SECRET, service="app.service", **more):
    return dict(dict(path=str(path), name=name, value=value, service=service, restart=False, credential="cred-" + name,
                     consumer="app"), **more)


def test_lines_set_exactly_other_lines_owner_kept_one_restart_per_service(tmp_path, host):
    env = tmp_path / "env"
    env.write_text("# keep me\nOTHER=1\nA=old\nexport B=old\n")
    env.chmod(0o644)
    os.chown(str(env), 4321, 4322)
    report = _systemd_host.apply([_entry(env, "A"), _entry(env, "B", value="plain"), _entry(env, "C", value="new c")])
    assert env.read_text() == "# keep me\nOTHER=1\nA=%s\nB=plain\nC=\"new c\"\n" % _env_file.quote(SECRET)
    stat = env.stat()
    assert (stat.st_mode & 0o7777, stat.st_uid, stat.st_gid) == (0o600, 4321, 4322)
    assert host() == ["restart app.service", "is-active app.service"]
    assert report["changed"] and not report["failed"] and report["msg"] == ""
    assert [(e["name"], e["changed"], e["restarted"]) for e in report["entries"]] == [
        ("A", True, True), ("B", True, True), ("C", True, True)]
    assert report["services"]["app.service"]["state"] == "active"
    assert SECRET not in json.dumps(report)
    # the same again: nothing to write, no restart
    again = _systemd_host.apply([_entry(env, "A"), _entry(env, "B", value="plain"), _entry(env, "C", value="new c")])
    assert not again["changed"] and len(host()) == 2 and [f.name for f in tmp_path.iterdir()] != []


def test_an_uncarriable_value_refuses_the_batch_before_anything_is_written(tmp_path, host):
    env = tmp_path / "env"
    env.write_text("A=old\n")
    report = _systemd_host.apply([_entry(env, "A", value="fine"), _entry(env, "B", value="two\nlines " + SECRET)])
    assert report["failed"] and report["entries"] == [] and "cred-B B contains a newline" in report["msg"]
    assert env.read_text() == "A=old\n" and host() == [] and SECRET not in json.dumps(report)


def test_a_service_that_does_not_restart_fails_its_entries_only_and_check_mode_changes_nothing(tmp_path, host):
    report = _systemd_host.apply([_entry(tmp_path / "new" / "env", "A"),
                                  _entry(tmp_path / "other", "B", service="broken.service")], timeout=0)
    by_name = dict((e["name"], e) for e in report["entries"])
    assert not by_name["A"]["failed"] and by_name["A"]["restarted"]
    assert by_name["B"]["failed"] and by_name["B"]["step"] == "restart"
    assert "Unable to restart service broken.service: Job for broken.service failed." == by_name["B"]["msg"]
    assert report["failed"] and report["services"]["broken.service"]["state"] == "failed"
    assert ((tmp_path / "new" / "env").stat().st_mode & 0o7777) == 0o600

    calls = len(host())
    env = tmp_path / "check"
    report = _systemd_host.apply([_entry(env, "A")], check_mode=True)
    assert report["changed"] and report["services"]["app.service"]["restarted"]
    assert not env.exists() and len(host()) == calls


@pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason="needs the system python3")
def test_the_program_runs_with_a_python_that_has_no_ansible(tmp_path, host):
    assert subprocess.run([SYSTEM_PYTHON, "-I", "-c", "import ansible"], capture_output=True, check=False).returncode != 0
    env = tmp_path / "env"
    args = dict(entries=[_entry(env, "A")], timeout=5, check_mode=False)
    program = host_program.program([_env_file, _systemd_host], "apply", args)
    assert SECRET not in program and base64.b64encode(SECRET.encode()).decode() not in program  # base64 of the whole args
    command = host_program.command(SYSTEM_PYTHON)
    assert command == "/usr/bin/python3 -" and SECRET not in command
    ran = subprocess.run(["/bin/sh", "-c", command.replace(" -", " -I -")], input=program.encode(), capture_output=True, check=False)
    report, why = host_program.answer(dict(rc=ran.returncode, stdout=ran.stdout.decode(), stderr=ran.stderr.decode()))
    assert why is None and report["changed"] and not report["failed"] and sorted(report) == [
        "changed", "entries", "failed", "msg", "services"]
    assert env.read_text() == "A=%s\n" % _env_file.quote(SECRET) and report["entries"][0]["changed"]
    assert host()[:2] == ["restart app.service", "is-active app.service"]


def test_the_program_finds_a_python_itself_and_a_broken_answer_is_told(tmp_path, host):
    command = host_program.command(None)
    program = host_program.program([_env_file, _systemd_host], "apply", dict(entries=[_entry(tmp_path / "env", "A")]))
    ran = subprocess.run(["/bin/sh", "-c", command], input=program.encode(), capture_output=True, check=False)
    report, why = host_program.answer(dict(rc=ran.returncode, stdout=ran.stdout.decode(), stderr=""))
    assert why is None and not report["failed"] and (tmp_path / "env").exists()

    # a call that raises: the program says which exception, nothing else
    bad = host_program.program([_env_file, _systemd_host], "apply", dict(entries=[{"name": "A", "value": SECRET}]))
    ran = subprocess.run([sys.executable, "-"], input=bad.encode(), capture_output=True, check=False)
    assert json.loads(ran.stdout) == {"failed": True, "msg": "the host step stopped: KeyError"}

    ran = subprocess.run(["/bin/sh", "-c", command], input=b"raise SystemExit(3)", capture_output=True, check=False)
    assert host_program.answer(dict(rc=ran.returncode, stdout=ran.stdout.decode(), stderr="Traceback\nBoom: x\n")) == (
        None, "rc 3: Boom: x")
    assert "exit 127" in command and "/usr/libexec/platform-python" in command
