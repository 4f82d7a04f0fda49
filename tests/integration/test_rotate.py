"""rotate.yml end to end against the lab: OpenBao store, demo provider, 2 systemd hosts,
the Kubernetes emulator and a batch consumer. Every result is checked with an independent
client (hvac, the provider's own API, ssh, the Kubernetes API), never with the collection."""
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.lab import scenarios
from tests.lab.ansible_runner import ROOT, ansible_env, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.hosts]


def _creates(lab):
    return [r for r in lab.provider.requests() if r["path"] == "/v1/api-keys" and r["method"] == "POST"
            and r["status"] == 201]


def _health(url, want=200, deadline=15):
    """The consumer's health status, waiting (bounded) for a restarting service to answer."""
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = None
        if status == want or time.monotonic() > end:
            return status
        time.sleep(0.2)


@pytest.fixture
def scenario(rotation_lab, request):
    """A fresh credential (own name, own KV path) on both hosts, the k8s app and a batch host."""
    lab = rotation_lab
    name = "api-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[5:45].strip("-")
    audit = lab.workdir / "rotation-audit.jsonl"
    audit.unlink(missing_ok=True)
    old_id, old_secret = scenarios.seed_api_key(lab, name, k8s=True, namespace=name)
    record = scenarios.api_key_record(lab, name, k8s=True, batch_group="batch", namespace=name)
    inventory = lab.write_inventory(
        path=lab.workdir / ("inv-%s.yml" % name), credentials={name: record},
        groups={"web": [h.name for h in lab.hosts], "batch": [lab.hosts[-1].name]})
    return type("Scenario", (), dict(lab=lab, name=name, old_id=old_id, old_secret=old_secret,
                                     record=record, inventory=inventory))


def _rotate(sc, extra=None, verbosity=0, playbook="playbooks/rotate.yml"):
    ev = {"credentials": [sc.name]}
    ev.update(extra or {})
    return run_playbook(playbook, inventory=sc.inventory, extra_vars=ev, env=sc.lab.env(),
                        verbosity=verbosity, timeout=600)


def _assert_no_secret(texts, *secrets):
    for text in texts:
        for secret in secrets:
            assert secret not in text


class _ChatReceiver(BaseHTTPRequestHandler):
    """A local chat webhook: keeps every JSON body it receives."""
    bodies = []

    def do_POST(self):  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def chat():
    server = HTTPServer(("127.0.0.1", 0), _ChatReceiver)
    _ChatReceiver.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d/hooks/rotation" % server.server_address[1], _ChatReceiver.bodies
    server.shutdown()
    server.server_close()


def test_standard_rotation_end_to_end(scenario, chat):
    sc, lab = scenario, scenario.lab
    chat_url, chat_bodies = chat
    creates_before = len(_creates(lab))
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    proc = _rotate(sc, extra={"rotation_notify_url": chat_url}, verbosity=3)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    # the chat webhook got one JSON summary, without any secret
    assert len(chat_bodies) == 1
    assert chat_bodies[0]["status"] == "ok" and chat_bodies[0]["finished"] == [sc.name]
    assert sc.name in chat_bodies[0]["text"]

    data, meta = scenarios.kv_read(lab, sc.name)
    new_id, new_secret = data["key_id"], data["api_key"]
    assert new_id != sc.old_id and new_secret != sc.old_secret
    assert "previous_api_key" not in data and "previous_key_id" not in data
    assert {"rotated_at", "rotated_by", "rotation_verified_at"} <= set(data)
    custom = meta["custom_metadata"]
    assert custom["rotation_phase"] == "finished"
    assert custom["consumers"] == "web-app,mobile-backend,batch-processor"
    assert custom["last_rotated"] >= started
    # exactly one new key; the old one is dead at the provider, the new one live
    assert len(_creates(lab)) == creates_before + 1
    assert lab.provider.test_key(sc.old_secret) == 401
    assert lab.provider.test_key(new_secret) == 200
    assert lab.provider.keys()[sc.old_id]["status"] == "revoked"
    # every systemd host: only the env_var line changed, mode 0600, service healthy
    for host in lab.hosts:
        res = lab.systemd.ssh(host, "stat -c %a /etc/application/environment; cat /etc/application/environment")
        mode, *lines = res.stdout.split("\n")
        assert mode == "600"
        assert "LOG_LEVEL=info" in lines and "PAYMENT_API_KEY=" + new_secret in lines
        assert _health(lab.consumer_url(host)) == 200
    # Kubernetes: the running pods hold the new value
    env = lab.k8s.env(sc.name, "mobile-backend")
    assert new_secret in str(env) and sc.old_secret not in str(env)
    assert lab.k8s.health(sc.name, "mobile-backend", "PAYMENT_API_KEY")[0] == 200
    # the audit trail, in order, without secrets
    events = [(e["event"], e.get("consumer", "")) for e in lab.audit_entries() if e["credential"] == sc.name]
    names = [e for e, _consumer in events]
    assert names.index("issued") < names.index("stored") < names.index("deployed")
    assert names.index("finished") > names.index("revoked") > max(i for i, n in enumerate(names) if n == "verified")
    assert ("picked_up_next_run", "batch-processor@" + lab.hosts[-1].name) in events
    _assert_no_secret([proc.stdout, proc.stderr, (lab.workdir / "rotation-audit.jsonl").read_text(),
                       json.dumps(chat_bodies)],
                      sc.old_secret, new_secret, lab.provider.admin_token, lab.openbao.token)
    # zero failed requests: no consumer was ever refused by the provider during the run
    rejected = [r for r in lab.provider.requests() if r["path"] == "/v1/test" and r["status"] == 401
                and r["source"] != "127.0.0.1" and r["time"] >= started]
    assert rejected == []

    # a re-run has nothing to do: the credential is not due, nothing is issued
    proc = run_playbook("playbooks/rotate.yml", inventory=sc.inventory, env=lab.env())
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert len(_creates(lab)) == creates_before + 1
    assert "Nothing to rotate" in proc.stdout


def test_failed_verification_rolls_back(scenario):
    sc, lab = scenario, scenario.lab
    broken = lab.hosts[1]
    # The second host's service will not come back after its restart.
    broken.put_file("/etc/systemd/system/payment-app.service.d/broken.conf",
                    "[Service]\nExecStartPre=/bin/false\n")
    broken.systemctl("daemon-reload")
    try:
        proc = _rotate(sc, extra={"rotation_verify_deadline": 5})
    finally:
        broken.run("rm", "-f", "/etc/systemd/system/payment-app.service.d/broken.conf")
        broken.systemctl("daemon-reload")
        broken.systemctl("restart", "payment-app.service", check=False)
    assert proc.returncode != 0
    assert "Rolled back: %s" % sc.name in proc.stdout
    data, meta = scenarios.kv_read(lab, sc.name)
    assert data["key_id"] == sc.old_id and data["api_key"] == sc.old_secret
    assert meta["custom_metadata"]["rotation_phase"] == "rolled_back"
    assert lab.provider.test_key(sc.old_secret) == 200
    new_keys = [k for k in lab.provider.keys().values() if k["id"] != sc.old_id and k["name"] == "production-integration"
                and k["created_at"] >= meta["created_time"][:19]]
    assert new_keys and all(k["status"] == "revoked" for k in new_keys)
    for host in lab.hosts:
        content = host.read_file("/etc/application/environment")
        assert "PAYMENT_API_KEY=" + sc.old_secret in content.splitlines()
        assert _health(lab.consumer_url(host)) == 200
    events = [e["event"] for e in lab.audit_entries() if e["credential"] == sc.name]
    assert "failed" in events and "rolled_back" in events
    assert "finished" not in events


@pytest.mark.parametrize("kill_after", ["stored", "deployed", "verified"])
def test_interrupted_run_resumes(scenario, kill_after):
    """Kill ansible-playbook right after a phase is reached, run again: the same rotation finishes."""
    sc, lab = scenario, scenario.lab
    creates_before = len(_creates(lab))
    audit = lab.workdir / "rotation-audit.jsonl"
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/rotate.yml", "-i", str(sc.inventory),
           "-e", '{"credentials": ["%s"]}' % sc.name]
    log = lab.workdir / ("interrupted-%s.log" % kill_after)
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=str(ROOT), env=ansible_env(lab.env()), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 240
    seen = False
    while time.monotonic() < deadline and proc.poll() is None:
        if audit.exists() and any('"event": "%s"' % kill_after in line and sc.name in line
                                  for line in audit.read_text().splitlines()):
            seen = True
            break
        time.sleep(0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert seen, "the run never reached %s:\n%s" % (kill_after, log.read_text()[-5000:])
    _data, meta = scenarios.kv_read(lab, sc.name)
    assert meta["custom_metadata"]["rotation_phase"] in ("pending", "deployed", "verified")

    done = _rotate(sc)
    assert done.returncode == 0, done.stdout[-6000:]
    assert "resuming from" in done.stdout
    data, meta = scenarios.kv_read(lab, sc.name)
    assert meta["custom_metadata"]["rotation_phase"] == "finished"
    assert len(_creates(lab)) == creates_before + 1, "a second new value was issued"
    assert lab.provider.test_key(sc.old_secret) == 401
    assert lab.provider.test_key(data["api_key"]) == 200
    for host in lab.hosts:
        assert "PAYMENT_API_KEY=" + data["api_key"] in host.read_file("/etc/application/environment").splitlines()


def test_rollback_playbook_on_demand(scenario):
    """Interrupt a rotation after the store step, then roll it back with rollback.yml."""
    sc, lab = scenario, scenario.lab
    # Run only as far as the store: the deploy play and the finish step are skipped by tags.
    proc = run_playbook("playbooks/rotate.yml", inventory=sc.inventory, env=lab.env(),
                        extra_vars={"credentials": [sc.name]}, tags="issue,store",
                        )
    data, meta = scenarios.kv_read(lab, sc.name)
    assert meta["custom_metadata"]["rotation_phase"] == "pending", proc.stdout[-4000:]
    new_id, new_secret = data["key_id"], data["api_key"]
    assert new_id != sc.old_id
    # put the new value on one host by hand, as an interrupted deploy would have
    host = lab.hosts[0]
    host.run("sed", "-i", "s/^PAYMENT_API_KEY=.*/PAYMENT_API_KEY=%s/" % new_secret, "/etc/application/environment")
    host.systemctl("restart", "payment-app.service")

    proc = run_playbook("playbooks/rollback.yml", inventory=sc.inventory, env=lab.env(),
                        extra_vars={"credential": sc.name, "reason": "INC-1 bad deploy"})
    assert proc.returncode == 0, proc.stdout[-6000:]
    data, meta = scenarios.kv_read(lab, sc.name)
    assert data["key_id"] == sc.old_id and data["api_key"] == sc.old_secret
    assert meta["custom_metadata"]["rotation_phase"] == "rolled_back"
    assert lab.provider.test_key(new_secret) == 401
    assert lab.provider.test_key(sc.old_secret) == 200
    for h in lab.hosts:
        assert "PAYMENT_API_KEY=" + sc.old_secret in h.read_file("/etc/application/environment").splitlines()
        assert _health(lab.consumer_url(h)) == 200
    # a finished rotation cannot be rolled back: the message says why
    proc = run_playbook("playbooks/rollback.yml", inventory=sc.inventory, env=lab.env(),
                        extra_vars={"credential": sc.name})
    assert proc.returncode != 0 and "no rotation in flight" in proc.stdout


def test_check_mode_reports_the_plan_and_changes_nothing(scenario):
    sc = scenario
    lab = sc.lab
    requests_before = len(lab.provider.requests())
    data_before, meta_before = scenarios.kv_read(lab, sc.name)
    env_before = {h.name: h.read_file("/etc/application/environment") for h in lab.hosts}
    proc = run_playbook("playbooks/rotate.yml", inventory=sc.inventory, check=True, verbosity=2,
                        extra_vars={"credentials": [sc.name], "force": True}, env=lab.env())
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert "Check mode, nothing is changed. Would rotate: " + sc.name in proc.stdout
    assert "consumer hosts: " in proc.stdout and lab.hosts[0].name in proc.stdout
    assert "Check mode: nothing was changed; a real run would rotate: " + sc.name in proc.stdout
    # nothing changed anywhere, checked with the services' own clients
    writes = [r for r in lab.provider.requests()[requests_before:] if r["method"] in ("POST", "DELETE", "PATCH")]
    assert writes == []
    data_after, meta_after = scenarios.kv_read(lab, sc.name)
    assert (data_after, meta_after["current_version"]) == (data_before, meta_before["current_version"])
    assert {h.name: h.read_file("/etc/application/environment") for h in lab.hosts} == env_before
    assert lab.audit_entries() == []
    _assert_no_secret([proc.stdout, proc.stderr], sc.old_secret)


def test_a_credential_stopped_by_the_revoke_guard_does_not_stop_the_others(scenario):
    """A: an unknown consumer keeps using the old key, so the guard keeps it (phase verified).
    B, later in the same run: still finishes. The run fails naming A, and says B finished."""
    sc, lab = scenario, scenario.lab
    other = sc.name[:30] + "-b"
    b_old_id, b_old_secret = scenarios.seed_api_key(lab, other, hosts=[], k8s=True, namespace=other)
    b_record = scenarios.api_key_record(lab, other, k8s=True, namespace=other)
    b_record["consumers"] = [c for c in b_record["consumers"] if c["kind"] == "kubernetes"]
    inventory = lab.write_inventory(
        path=lab.workdir / ("inv-%s-two.yml" % sc.name), credentials={sc.name: sc.record, other: b_record},
        groups={"web": [h.name for h in lab.hosts], "batch": [lab.hosts[-1].name]})
    stop = threading.Event()

    def forgotten_consumer():
        while not stop.is_set():
            lab.provider.test_key(sc.old_secret)
            stop.wait(0.3)
    user = threading.Thread(target=forgotten_consumer, daemon=True)
    user.start()
    try:
        proc = run_playbook("playbooks/rotate.yml", inventory=inventory, env=lab.env(), timeout=600,
                            extra_vars={"credentials": [sc.name, other], "rotation_quiet_seconds": 2})
    finally:
        stop.set()
        user.join(10)
    assert proc.returncode != 0
    assert "Not finished: %s: " % sc.name in proc.stdout and "was used" in proc.stdout, proc.stdout[-6000:]
    assert "Finished: %s." % other in proc.stdout
    # A: the new value is live everywhere and current, the old one kept (not revoked)
    data, meta = scenarios.kv_read(lab, sc.name)
    assert meta["custom_metadata"]["rotation_phase"] == "verified" and data["key_id"] != sc.old_id
    assert lab.provider.test_key(sc.old_secret) == 200 and lab.provider.test_key(data["api_key"]) == 200
    # B: finished in the same run, its old key dead
    b_data, b_meta = scenarios.kv_read(lab, other)
    assert b_meta["custom_metadata"]["rotation_phase"] == "finished" and b_data["key_id"] != b_old_id
    assert lab.provider.test_key(b_old_secret) == 401 and lab.provider.test_key(b_data["api_key"]) == 200
    events = [(e["credential"], e["event"]) for e in lab.audit_entries()]
    assert (sc.name, "revoke_blocked") in events and (other, "finished") in events
    _assert_no_secret([proc.stdout, proc.stderr], sc.old_secret, b_old_secret, data["api_key"], b_data["api_key"])
