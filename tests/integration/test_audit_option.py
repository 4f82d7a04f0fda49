"""The option ``audit`` of issue_key, secret_store and revoke_key: the module names the entry of
what it did and this collection's action writes it to the trail in the same task (one task fewer
per step). Checked by reading the trail file back, never through the collection's code."""
import json
import socket

import pytest

from tests.lab.ansible_runner import run_module

GENERATED = {"kind": "generated", "length": 40}


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "module-process"])
def test_issue_key_writes_its_issued_entry(tmp_path, in_process):
    trail = tmp_path / "audit.jsonl"
    result, proc = run_module("credops.rotation.issue_key", {
        "credential": "audited", "issuer": GENERATED,
        "audit": {"previous_key_id": "old-1", "incident": "INC-9", "details": {"why": "test"}}},
        extra_vars={"rotation_audit_log": str(trail), "rotation_run_in_process": in_process})
    assert result and not result.get("failed"), proc.stdout[-3000:]
    assert "audit_entries" not in result
    assert result["audit_path"] == str(trail) and result["audit_events"] == ["issued"]
    [entry] = _lines(trail)
    assert entry["credential"] == "audited" and entry["event"] == "issued"
    assert entry["key_id"] == result["key_id"] and entry["previous_key_id"] == "old-1"
    assert entry["incident"] == "INC-9"
    assert entry["details"] == {"issuer": "generated", "fingerprint": result["fingerprint"], "why": "test"}
    assert entry["actor"]
    assert result["secret"] not in trail.read_text()


def test_no_entry_without_the_option_or_in_check_mode(tmp_path):
    trail = tmp_path / "audit.jsonl"
    for args, check in (({}, False), ({"audit": {}}, True)):
        result, proc = run_module("credops.rotation.issue_key", dict(args, credential="quiet", issuer=GENERATED),
                                  check=check, extra_vars={"rotation_audit_log": str(trail)})
        assert result and not result.get("failed"), proc.stdout[-3000:]
        assert "audit_path" not in result and "audit_entries" not in result
    assert not trail.exists()


def test_a_secret_field_in_the_details_is_refused_before_anything_changes(tmp_path):
    trail = tmp_path / "audit.jsonl"
    result, _proc = run_module("credops.rotation.issue_key", {
        "credential": "leaky", "issuer": GENERATED, "audit": {"details": {"Password": "x"}}},
        extra_vars={"rotation_audit_log": str(trail)})
    assert result["failed"] and not result.get("key_id") and not result.get("secret")
    assert "credential 'leaky': audit.details must not carry secret fields: Password" in result["msg"]
    assert _lines(trail) == []  # (the action opened the trail before the module ran: it may exist, empty)


def test_bad_sinks_are_refused_before_the_module_runs(tmp_path):
    trail = tmp_path / "audit.jsonl"
    result, _proc = run_module("credops.rotation.issue_key", {
        "credential": "nosink", "issuer": GENERATED, "audit": {}},
        extra_vars={"rotation_audit_log": str(trail), "rotation_audit_sinks": [{"type": "pigeon"}]})
    assert result["failed"] and "rotation_audit_sinks" in result["msg"]
    assert "key_id" not in result and not trail.exists()


def test_a_required_sink_that_fails_fails_the_task_and_says_the_step_was_done(tmp_path):
    trail = tmp_path / "audit.jsonl"
    sink = {"type": "http", "url": "http://127.0.0.1:%d/audit" % _closed_port(), "timeout": 2, "required": True}
    result, proc = run_module("credops.rotation.issue_key", {
        "credential": "sinkdown", "issuer": GENERATED, "audit": {}},
        extra_vars={"rotation_audit_log": str(trail), "rotation_audit_sinks": [sink]}, task={"no_log": True})
    assert result["failed"], proc.stdout[-3000:]
    assert "issued a new value" in result["msg"] and "(done), but its audit entry could not be written" in result["msg"]
    # the file entry is written before the sinks are tried
    assert [e["event"] for e in _lines(trail)] == ["issued"]
    assert result["secret"] not in result["msg"] and result["secret"] not in proc.stdout + proc.stderr


def test_audit_is_refused_for_an_async_task(tmp_path):
    trail = tmp_path / "audit.jsonl"
    result, _proc = run_module("credops.rotation.issue_key", {
        "credential": "later", "issuer": GENERATED, "audit": {}},
        extra_vars={"rotation_audit_log": str(trail)}, task={"async": 30, "poll": 1})
    assert result["failed"] and "audit is not written for an async task" in result["msg"]
    assert not trail.exists()


def test_a_trail_that_cannot_be_opened_is_refused_before_the_module_runs(tmp_path):
    (tmp_path / "not-a-directory").write_text("")
    trail = tmp_path / "not-a-directory" / "audit.jsonl"
    result, _proc = run_module("credops.rotation.issue_key", {
        "credential": "nowhere", "issuer": GENERATED, "audit": {}},
        extra_vars={"rotation_audit_log": str(trail)})
    assert result["failed"] and "the audit trail %s cannot be written" % trail in result["msg"]
    assert "key_id" not in result
