"""audit_event with entries: several entries in one task (the deploy step's one task per host),
every entry checked before the first is written. Read back from the file, not from the result."""
import json

from tests.lab.ansible_runner import run_module


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_entries_written_in_order_with_the_shared_incident(tmp_path):
    trail = tmp_path / "audit.jsonl"
    result, proc = run_module("credops.rotation.audit_event", {
        "path": str(trail), "incident": "INC-7", "sinks": [],
        "entries": [{"credential": "a", "event": "deployed", "consumer": "app@web1", "key_id": "k1",
                     "details": {"which": "new", "restarted": True, "service": "app.service"}},
                    {"credential": "b", "event": "failed", "consumer": "app@web1", "incident": "INC-8",
                     "details": {"step": "Deploy | restart app.service", "error": "Unable to restart"}}]})
    assert result and not result.get("failed"), proc.stdout[-3000:]
    lines = _lines(trail)
    assert [(e["credential"], e["event"], e["incident"]) for e in lines] == [
        ("a", "deployed", "INC-7"), ("b", "failed", "INC-8")]
    assert lines[0]["key_id"] == "k1" and lines[1]["details"]["step"] == "Deploy | restart app.service"
    assert result["entries"] == lines


def test_a_bad_entry_is_refused_before_any_is_written(tmp_path):
    trail = tmp_path / "audit.jsonl"
    result, _proc = run_module("credops.rotation.audit_event", {
        "path": str(trail), "sinks": [],
        "entries": [{"credential": "a", "event": "deployed"},
                    {"credential": "b", "event": "deployed", "colour": "blue"}]})
    assert result["failed"] and "entries[1] has unknown fields colour" in result["msg"]
    result, _proc = run_module("credops.rotation.audit_event", {
        "path": str(trail), "sinks": [], "entries": [{"credential": "a", "event": "deployed"}, {"event": "failed"}]})
    assert result["failed"] and "entries[1] credential is required" in result["msg"]
    assert _lines(trail) == []


def test_no_entries_writes_nothing(tmp_path):
    trail = tmp_path / "audit.jsonl"
    result, _proc = run_module("credops.rotation.audit_event", {"path": str(trail), "sinks": [], "entries": []})
    assert not result.get("failed") and not result["changed"] and not trail.exists()
