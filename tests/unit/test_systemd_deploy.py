"""The systemd batch of the deploy role: the edit of an environment file (module_utils/_env_file),
the systemd_consumer module's refusal before writing, the filter that plans the batch and what is
recorded of it (plugin_utils/systemd_deploy, which the systemd_consumer action uses). The restarts
themselves are proven on real systemd hosts (tests/integration/test_one_restart_per_service.py)."""
import json

import pytest

from ansible_collections.credops.rotation.plugins.filter import systemd_deploy
from ansible_collections.credops.rotation.plugins.module_utils import _env_file
from ansible_collections.credops.rotation.plugins.modules import systemd_consumer
from ansible_collections.credops.rotation.plugins.plugin_utils import systemd_deploy as deploy
from tests.unit._module_args import patch_module_args

SECRET = "s3cr3t-VALUE-planted"


@pytest.mark.parametrize("text, assignments, expected", [
    ("", [("A", "A=1")], "A=1\n"),
    ("X=keep\nA=old\n", [("A", "A=new")], "X=keep\nA=new\n"),
    ("A=first\nX=keep\nexport A=second\n", [("A", "A=new")], "A=first\nX=keep\nA=new\n"),
    ("  A=old\n", [("A", "A=new")], "A=new\n"),
    ("AB=other\n", [("A", "A=new")], "AB=other\nA=new\n"),
    ("# A=comment\n", [("A", "A=new")], "# A=comment\nA=new\n"),
    ("A=1\nB=2\n", [("A", "A=3"), ("B", "B=4"), ("C", "C=5")], "A=3\nB=4\nC=5\n"),
    ("A.B=1\n", [("A.B", "A.B=2")], "A.B=2\n"),
])
def test_set_lines_changes_only_the_assigning_line(text, assignments, expected):
    assert _env_file.set_lines(text, assignments) == expected


def _run_module(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            systemd_consumer.main()
    return json.loads(capsys.readouterr().out)


def test_module_refuses_an_uncarriable_value_before_writing_anything(tmp_path, capsys):
    path = tmp_path / "environment"
    path.write_text("A=old\n")
    result = _run_module(capsys, {"entries": [
        {"path": str(path), "name": "A", "value": "fine", "service": "x.service", "credential": "one"},
        {"path": str(path), "name": "B", "value": SECRET + "\nINJECTED=1", "service": "x.service", "credential": "two"},
    ]})
    assert result["failed"] and "two B contains a newline" in result["msg"]
    assert path.read_text() == "A=old\n"
    assert SECRET not in json.dumps(result)


def test_module_check_mode_reports_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "environment"
    path.write_text("A=old\n")
    result = _run_module(capsys, {"_ansible_check_mode": True, "entries": [
        {"path": str(path), "name": "A", "value": SECRET, "service": "x.service", "credential": "one"},
        {"path": str(path), "name": "B", "value": "same", "service": "y.service", "credential": "two"},
    ]})
    assert result["changed"] and path.read_text() == "A=old\n"
    assert [e["changed"] for e in result["entries"]] == [True, True]
    assert result["services"]["x.service"]["restarted"]
    assert SECRET not in json.dumps(result)


CREDS = {
    "a": {"consumers": [{"name": "app", "kind": "systemd", "env_file": "/e", "env_var": "A", "service": "s.service"},
                        {"name": "tls", "kind": "systemd", "cert_file": "/c", "key_file": "/k", "service": "t.service"}]},
    "b": {"consumers": [{"name": "app", "kind": "systemd", "env_file": "/e", "env_var": "B", "id_env_var": "B_ID",
                         "service": "s.service", "verify": {"url": "http://b/health", "note": "not a verify option"}}]},
    "c": {"consumers": [{"name": "app", "kind": "systemd", "env_file": "/e", "env_var": "C", "id_env_var": "C_ID",
                         "service": "s.service", "verify": {"url": "http://c/health"}}]},
}
WORK = [{"credential": "a", "consumer": "app", "index": 0, "kind": "systemd"},
        {"credential": "a", "consumer": "tls", "index": 1, "kind": "systemd"},
        {"credential": "b", "consumer": "app", "index": 0, "kind": "systemd"},
        {"credential": "c", "consumer": "app", "index": 0, "kind": "systemd"}]
VALUES = {"a": {"new": "va", "new_id": "ia"}, "b": {"new": "vb", "new_id": "ib"}, "c": {"new": "vc"}}


def test_entries_batch_the_env_file_consumers_and_refuse_what_cannot_be_written():
    env = systemd_deploy.systemd_entries(WORK, CREDS, VALUES, "new", {"b": {"phase": "pending"}})
    assert [i["credential"] for i in env["items"]] == ["a", "b", "c"]   # the TLS consumer is not batched
    assert [(e["name"], e.get("value"), e["restart"], e["key_id"]) for e in env["entries"]] == [
        ("A", "va", False, "ia"), ("B", "vb", True, "ib"), ("B_ID", "ib", True, "ib"), ("C", None, False, None)]
    reason = "the store holds no key id for the new value of c, so C_ID cannot be written"
    assert env["refused"] == {"c app": reason} and env["entries"][-1]["refused"] == reason
    assert [e.get("verify") for e in env["entries"]] == [None] + [{"url": "http://b/health"}] * 2 + [{"url": "http://c/health"}]
    forced = systemd_deploy.systemd_entries(WORK, CREDS, VALUES, "old", force=True)
    assert [e.get("value") for e in forced["entries"]] == [None] * 3 and set(forced["refused"]) == {"a app", "b app", "c app"}


def _consumers(env):
    """The consumers of a batch as the systemd_consumer action names them (its consumers_of)."""
    from ansible_collections.credops.rotation.plugins.action.systemd_consumer import consumers_of
    return consumers_of(env["entries"])


def test_outcome_and_record_per_consumer():
    env = systemd_deploy.systemd_entries(WORK, CREDS, VALUES, "new")
    module = {"failed": True, "msg": "s.service is not active", "entries": [
        {"credential": "a", "consumer": "app", "changed": True, "restarted": True, "failed": False, "step": ""},
        {"credential": "b", "consumer": "app", "changed": True, "restarted": False, "failed": True, "step": "wait",
         "msg": "s.service is not active 5 s after its restart (systemctl is-active: failed)"},
        {"credential": "b", "consumer": "app", "changed": False, "restarted": False, "failed": False, "step": ""}]}
    outcome = deploy.outcome(_consumers(env), module)
    assert [(r["credential"], r["failed"], r["changed"], r["restarted"]) for r in outcome] == [
        ("a", False, True, True), ("b", True, True, False), ("c", True, False, False)]
    assert outcome[1]["step"] == "Deploy | wait for the service to be active (s.service)"
    assert outcome[2]["step"] == "Deploy | write the value in the environment file (C in /e)"
    assert outcome[2]["error"] == "the store holds no key id for the new value of c, so C_ID cannot be written"
    record = deploy.record(outcome, {("a", "app"): {"failed": True, "msg": "401 from the consumer", "attempts": 3}}, "new")
    assert record["results"]["a"] == [{"consumer": "app", "kind": "systemd", "failed": True, "changed": True,
                                       "step": "Verify | the consumer works with the value (app, new)",
                                       "error": "401 from the consumer"}]
    assert [f["credential"] for f in record["failed"]] == ["a", "b", "c"] and record["verified"] == []
    ok = deploy.record(outcome[:1], {("a", "app"): {"failed": False, "attempts": 2}})
    assert ok["results"]["a"] == [{"consumer": "app", "kind": "systemd", "failed": False, "changed": True,
                                   "verified": True}]
    assert ok["verified"] == [{"credential": "a", "consumer": "app", "attempts": 2}]
    unchecked = deploy.record(outcome[:1], {})
    assert unchecked["results"]["a"][0]["verified"] is False and unchecked["verified"] == unchecked["failed"] == []


def test_a_module_that_did_not_finish_fails_every_item():
    env = systemd_deploy.systemd_entries(WORK[:1], CREDS, VALUES, "new")
    outcome = deploy.outcome(_consumers(env), {"failed": True, "msg": "MODULE FAILURE"})
    assert outcome[0]["failed"] and outcome[0]["error"] == "MODULE FAILURE" and outcome[0]["changed"]


def test_audit_entries_name_the_consumer_at_its_host_and_the_key_id_never_the_value():
    row = {"credential": "a", "consumer": "app", "service": "s.service", "restarted": True}
    assert deploy.audit_entry(row, "deployed", "web1", "k-new", "new") == {
        "credential": "a", "event": "deployed", "consumer": "app@web1", "key_id": "k-new",
        "details": {"which": "new", "restarted": True, "service": "s.service"}}
    failed = deploy.audit_entry(dict(row, step="Deploy | restart s.service", error="no"), "failed", "web1", "k-old", "old")
    assert failed["key_id"] == "k-old" and failed["details"] == {"step": "Deploy | restart s.service", "error": "no"}
    verified = deploy.audit_entry({"credential": "a", "consumer": "app", "attempts": 2}, "verified", "w")
    assert verified == {"credential": "a", "event": "verified", "consumer": "app@w",
                        "details": {"step": "verify", "attempts": 2}}
