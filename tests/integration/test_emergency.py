"""emergency.yml against the lab: revoke first (ordering proven by the provider's own log),
then issue, deploy to every consumer at once, verify, incident record; --tags revoke alone."""
import re
import time

import pytest

from tests.lab import scenarios
from tests.lab.ansible_runner import run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.hosts]


@pytest.fixture
def emergency(rotation_lab, request):
    lab = rotation_lab
    name = "em-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[5:40].strip("-")
    (lab.workdir / "rotation-audit.jsonl").unlink(missing_ok=True)
    old_id, old_secret = scenarios.seed_api_key(lab, name)
    record = scenarios.api_key_record(lab, name)
    inventory = lab.write_inventory(path=lab.workdir / ("inv-%s.yml" % name), credentials={name: record},
                                    groups={"web": [h.name for h in lab.hosts]})
    return lab, name, old_id, old_secret, inventory


def test_emergency_revokes_first_then_rotates(emergency):
    lab, name, old_id, old_secret, inventory = emergency
    # an "attacker" uses the key from an unknown source before the emergency
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 60)) + "Z"
    assert lab.provider.test_key(old_secret) == 200
    proc = run_playbook("playbooks/emergency.yml", inventory=inventory, env=lab.env(), verbosity=3,
                        extra_vars={"credential": name, "incident": "INC-4242", "compromised_since": since})
    assert proc.returncode == 0, proc.stdout[-6000:]
    log = lab.provider.requests()
    revoke_at = next(i for i, r in enumerate(log) if r["method"] == "DELETE" and r["key_id"] == old_id)
    creates = [i for i, r in enumerate(log) if r["method"] == "POST" and r["path"] == "/v1/api-keys"
               and r["status"] == 201]
    assert creates[-1] > revoke_at, "the new key was created before the compromised one was revoked"
    assert lab.provider.test_key(old_secret) == 401
    data, meta = scenarios.kv_read(lab, name)
    assert data["key_id"] != old_id and lab.provider.test_key(data["api_key"]) == 200
    assert meta["custom_metadata"]["rotation_phase"] == "finished"
    for host in lab.hosts:
        assert "PAYMENT_API_KEY=" + data["api_key"] in host.read_file("/etc/application/environment").splitlines()
    entries = [e for e in lab.audit_entries() if e["credential"] == name]
    assert entries[0]["event"] == "revoked" and entries[0]["incident"] == "INC-4242"
    # written by the revoke task itself (its option audit), with the task's details and the module's
    assert entries[0]["key_id"] == old_id and entries[0]["details"] == {
        "step": "revoke", "emergency": True, "proven_dead": True, "already_revoked": False}
    issued, stored = (next(e for e in entries if e["event"] == event) for event in ("issued", "stored"))
    assert issued["key_id"] == stored["key_id"] == data["key_id"] and issued["previous_key_id"] == old_id
    assert issued["details"]["issuer"] == "rest" and len(issued["details"]["fingerprint"]) == 12
    assert stored["details"] == {"store": "vault_kv2", "phase": "pending"}
    assert all(e.get("incident") == "INC-4242" for e in entries)
    assert {"scope_assessed", "issued", "deployed", "verified", "finished", "incident_recorded"} <= {e["event"] for e in entries}
    # deployed to all hosts at once: both hosts' deploy events happen before either verification ends
    record = (lab.workdir / "incidents" / "INC-4242.md").read_text()
    assert name in record and old_id in record and data["key_id"] in record
    assert "passed on every consumer" in record and "Earliest unauthorized use" in record
    for text in (proc.stdout, proc.stderr, record, (lab.workdir / "rotation-audit.jsonl").read_text()):
        assert old_secret not in text and data["api_key"] not in text


def test_tags_revoke_only_kills_the_key(emergency):
    lab, name, old_id, old_secret, inventory = emergency
    creates_before = sum(1 for r in lab.provider.requests() if r["method"] == "POST" and r["status"] == 201)
    proc = run_playbook("playbooks/emergency.yml", inventory=inventory, env=lab.env(), tags="revoke",
                        extra_vars={"credential": name, "incident": "INC-7"})
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert lab.provider.test_key(old_secret) == 401
    assert sum(1 for r in lab.provider.requests() if r["method"] == "POST" and r["status"] == 201) == creates_before
    data, _meta = scenarios.kv_read(lab, name)
    assert data["key_id"] == old_id  # nothing else touched
    # the full run afterwards finishes the emergency (the key is already dead: revoke is ok)
    proc = run_playbook("playbooks/emergency.yml", inventory=inventory, env=lab.env(),
                        extra_vars={"credential": name, "incident": "INC-7"})
    assert proc.returncode == 0, proc.stdout[-6000:]
    data, meta = scenarios.kv_read(lab, name)
    assert data["key_id"] != old_id and meta["custom_metadata"]["rotation_phase"] == "finished"
    # the same incident again: the store says it was handled, so the replacement is not revoked
    proc = run_playbook("playbooks/emergency.yml", inventory=inventory, env=lab.env(),
                        extra_vars={"credential": name, "incident": "INC-7"})
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert "already handled" in proc.stdout
    assert lab.provider.test_key(data["api_key"]) == 200
    assert not any(r["method"] == "DELETE" and r["key_id"] == data["key_id"] for r in lab.provider.requests())
    again, _meta = scenarios.kv_read(lab, name)
    assert again["key_id"] == data["key_id"]


def test_a_run_without_the_revoke_step_reads_the_store_itself(emergency):
    lab, name, old_id, old_secret, inventory = emergency
    # --skip-tags revoke: the other steps still know the store's state (read separately)
    proc = run_playbook("playbooks/emergency.yml", inventory=inventory, env=lab.env(), tags="record",
                        extra_vars={"credential": name, "incident": "INC-8"})
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert "read the store and pick the compromised value (when the revoke step is not part of this run)" in proc.stdout
    assert lab.provider.test_key(old_secret) == 200  # nothing revoked without the revoke step
    assert not [r for r in lab.provider.requests() if r["method"] == "DELETE" and r["key_id"] == old_id]
    assert old_id in (lab.workdir / "incidents" / "INC-8.md").read_text()  # the compromised key, picked the same way
