"""webhook_rotate.yml end to end against the lab: OpenBao store, the demo webhook sender, the demo
webhook receiver as a systemd service on both lab hosts. Every result is checked with an
independent client (hvac, the sender's own API and request log, the receivers' delivery logs,
a stdlib HMAC signer, the hosts' files), never with the collection."""
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import hvac
import pytest

from tests.lab import webhooks
from tests.lab.ansible_runner import ROOT, ansible_env, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.hosts]

KV_MOUNT = "secret"
SERVICE = "wh-receiver"          # its own service, port and env file: no clash with payment-app on 8080
PORT = 8091
ENV_FILE = "/etc/wh-receiver/environment"
VAR = "ORDERS_WEBHOOK_SECRET"


@pytest.fixture(scope="module")
def sender(webhook_sender):
    return webhook_sender


def _record(lab, sender, name, hook_ids):
    return {
        "type": "webhook_secret", "risk": "high", "rotation_contact": "orders@example.org",
        "issuer": {"kind": "generated", "length": 48},
        "store": {"kind": "vault_kv2", "url": "{{ vault_addr }}", "mount": KV_MOUNT,
                  "path": "webhooks/" + name, "field": "signing_secret"},
        "sender": {
            "base_url": sender.url,
            "auth": {"type": "bearer", "token": "{{ lookup('ansible.builtin.env', 'WEBHOOK_SENDER_ADMIN_TOKEN') }}"},
            "webhook_id": hook_ids,
            "switch": {"method": "PATCH", "path": "/v1/webhooks/{id}", "body": {"secret": "{secret}"}},
            "test": {"method": "POST", "path": "/v1/webhooks/{id}/test", "json": {"delivered": True}},
        },
        "consumers": [{
            "name": "orders-receiver", "kind": "systemd", "hosts": "receivers",
            "env_file": ENV_FILE, "env_var": VAR, "service": SERVICE + ".service",
            "verify": {"url": "http://{{ ansible_host }}:%d/webhook" % PORT, "status": 200},
            "deliveries": {"url": "http://{{ ansible_host }}:%d/deliveries" % PORT},
        }],
    }


@pytest.fixture
def wh(rotation_lab, sender, request):
    """A fresh webhook secret: in the store, on both receivers, at the sender (one webhook per
    receiver, like two endpoints sharing the secret)."""
    lab = rotation_lab
    name = "wh-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[5:40].strip("-")
    (lab.workdir / "rotation-audit.jsonl").unlink(missing_ok=True)
    old = "whsec_" + secrets.token_urlsafe(32)
    client = hvac.Client(url=lab.openbao.addr, token=lab.openbao.token)
    client.secrets.kv.v2.create_or_update_secret(path="webhooks/" + name, mount_point=KV_MOUNT,
                                                 secret={"signing_secret": old})
    urls = [webhooks.install_receiver(lab, host, old, name=SERVICE, env_file=ENV_FILE, env_var=VAR, port=PORT)
            for host in lab.hosts]
    hook_ids = [sender.create_webhook(url, old) for url in urls]
    record = _record(lab, sender, name, hook_ids)
    inventory = lab.write_inventory(path=lab.workdir / ("inv-%s.yml" % name), credentials={name: record},
                                    groups={"receivers": [h.name for h in lab.hosts]})
    env = dict(lab.env(), WEBHOOK_SENDER_ADMIN_TOKEN=sender.admin_token)
    return type("Webhook", (), dict(lab=lab, sender=sender, name=name, old=old, urls=urls, hook_ids=hook_ids,
                                    record=record, inventory=inventory, env=env, client=client))


def _run(wh, verbosity=0, check=False):
    proc = run_playbook("credops.rotation.webhook_rotate", inventory=wh.inventory, extra_vars={"credential": wh.name},
                        env=wh.env, verbosity=verbosity, check=check, timeout=300)
    wh.runs = getattr(wh, "runs", 0) + 1
    # kept for diagnosis beside the lab's other logs
    (wh.lab.workdir / ("%s-run%d.log" % (wh.name, wh.runs))).write_text(proc.stdout + proc.stderr)
    return proc


def _kv(wh):
    data = wh.client.secrets.kv.v2.read_secret_version(path="webhooks/" + wh.name, mount_point=KV_MOUNT,
                                                       raise_on_deleted_version=True)["data"]["data"]
    meta = wh.client.secrets.kv.v2.read_secret_metadata(path="webhooks/" + wh.name, mount_point=KV_MOUNT)["data"]
    return data, meta["custom_metadata"] or {}, meta


def _env_lines(host):
    return host.read_file(ENV_FILE).splitlines()


def _events(wh):
    return [e for e in wh.lab.audit_entries() if e["credential"] == wh.name]


def _patches(wh, since=""):
    return [r for r in wh.sender.requests() if r["method"] == "PATCH" and r["webhook_id"] in wh.hook_ids
            and r["time"] >= since]


def _wait(check, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("not reached within %ss" % timeout)


def _no_secret(texts, *values):
    for text in texts:
        for value in values:
            assert value not in text


def _start_in_background(wh):
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "credops.rotation.webhook_rotate",
           "-i", str(wh.inventory), "-e", json.dumps({"credential": wh.name})]
    log = open(wh.lab.workdir / ("%s-background.log" % wh.name), "w")
    try:
        return subprocess.Popen(cmd, cwd=str(ROOT), env=ansible_env(wh.env), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        log.close()


def test_full_handshake(wh):
    lab, hosts = wh.lab, wh.lab.hosts
    before = {h.name: _env_lines(h) for h in hosts}

    # check mode: the plan, nothing changed anywhere
    proc = _run(wh, check=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "start a new handshake" in proc.stdout and "nothing is changed" in proc.stdout
    data, custom, meta = _kv(wh)
    assert data == {"signing_secret": wh.old} and meta["current_version"] == 1
    assert {h.name: _env_lines(h) for h in hosts} == before and _patches(wh) == []

    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    proc = _run(wh, verbosity=3)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-3000:]

    # the store: the new value current, the previous cleared, phases recorded
    data, custom, _meta = _kv(wh)
    new = data["signing_secret"]
    assert new != wh.old and len(new) == 48
    assert "previous_signing_secret" not in data and "previous_key_id" not in data
    assert custom["rotation_phase"] == "finished" and custom["webhook_phase"] == "complete"
    assert custom["consumers"] == "orders-receiver" and custom["last_rotated"] >= started
    assert data["rotation_verified_at"] >= started

    # the receivers: only <VAR> left, with the new secret; other lines kept; mode 0600
    for host in hosts:
        lines = _env_lines(host)
        assert lines == ["LOG_LEVEL=info", "%s=%s" % (VAR, new)], lines
        assert host.run("stat", "-c", "%a", ENV_FILE).stdout.strip() == "600"

    # ORDERING: both receivers accepted BOTH secrets before the sender's first PATCH
    patches = _patches(wh, started)
    assert sorted(p["webhook_id"] for p in patches) == sorted(wh.hook_ids)
    assert all(p["status"] == 200 and p["fields"] == ["secret"] for p in patches)
    first_patch = min(p["time"] for p in patches)
    for host in hosts:
        log = [d for d in webhooks.deliveries(host, PORT) if d["time"] >= started]
        accepted = {(d["probe"], d["matched"]) for d in log if d["time"] < first_patch and d["status"] == 200}
        assert {("new", "new"), ("old", "old")} <= accepted, (host.name, log)
        # after the switch the sender's own test delivery arrived signed with the new secret
        after = [d for d in log if d["time"] > first_patch and d["type"] == "webhook.test"]
        assert after and all(d["matched"] == "new" and d["status"] == 200 for d in after), log
        # and no sender delivery was ever refused during the handshake
        assert not [d for d in log if d["type"] == "webhook.test" and d["status"] != 200]
        # at the end the old secret is refused: a probe signed with it got 401
        assert [d for d in log if d["probe"] == "old" and d["matched"] == "none" and d["status"] == 401]

    # independently (stdlib HMAC): the old secret is rejected, the new one accepted, everywhere
    for url in wh.urls:
        assert webhooks.post_signed(url, wh.old) == 401
        assert webhooks.post_signed(url, new) == 200
    # the sender signs with the new secret: its test deliveries are accepted by receivers that
    # accept nothing else
    for hook_id in wh.hook_ids:
        assert wh.sender.test_delivery(hook_id)["delivered"] is True

    # the audit trail, in order
    events = _events(wh)
    names = [e["event"] for e in events]
    dual = [i for i, e in enumerate(events) if e["event"] == "dual_accept"]
    dropped = [i for i, e in enumerate(events) if e["event"] == "old_secret_dropped"]
    assert sorted(events[i]["consumer"] for i in dual) == sorted("orders-receiver@" + h.name for h in hosts)
    assert len(dropped) == 2
    assert names.index("issued") < names.index("stored") < min(dual)
    assert max(dual) < names.index("deployed") < names.index("sender_switched") < names.index("verified")
    assert names.index("verified") < min(dropped) and max(dropped) < names.index("finished")
    # the audit's sender_switched is not before the sender logged the PATCHes of both webhooks
    assert events[names.index("sender_switched")]["time"] >= max(p["done"] for p in patches)

    # no secret value in the output at -vvv, nor in the audit trail
    _no_secret([proc.stdout, proc.stderr, (lab.workdir / "rotation-audit.jsonl").read_text()],
               wh.old, new, wh.sender.admin_token, lab.openbao.token)


@pytest.mark.parametrize("kill_after", ["dual_accept", "old_secret_dropped"])
def test_interrupted_run_resumes(wh, kill_after):
    """Kill ansible-playbook as soon as the first receiver accepts both secrets (phase pending or
    deployed, the sender untouched), or as soon as the first one dropped the old secret (phase
    verified, the receivers half-way): a second run finishes the same handshake with the same
    new secret."""
    lab = wh.lab
    audit = lab.workdir / "rotation-audit.jsonl"
    proc = _start_in_background(wh)
    deadline = time.monotonic() + 120
    seen = False
    while time.monotonic() < deadline and proc.poll() is None:
        if audit.exists() and any('"event": "%s"' % kill_after in line and wh.name in line
                                  for line in audit.read_text().splitlines()):
            seen = True
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert seen, "the run never reached " + kill_after
    data, custom, meta = _kv(wh)
    pending = data["signing_secret"]
    assert pending != wh.old and data["previous_signing_secret"] == wh.old
    versions = meta["current_version"]
    if kill_after == "dual_accept":
        assert custom["rotation_phase"] in ("pending", "deployed")
        assert _patches(wh) == [], "the sender was switched before every receiver accepted both secrets"
        # and make the second receiver look stopped between writing its file and restarting:
        # the file already has the dual-accept layout, the running service still the old one
        host, url = lab.hosts[-1], wh.urls[-1]
        host.put_file(ENV_FILE, "LOG_LEVEL=info\n%s=%s\n" % (VAR, wh.old), mode=0o600)
        host.systemctl("restart", SERVICE + ".service")
        _wait(lambda: webhooks.post_signed(url, wh.old) == 200)
        host.put_file(ENV_FILE, "LOG_LEVEL=info\n%s=%s\n%s_NEW=%s\n%s_OLD=%s\n"
                      % (VAR, wh.old, VAR, pending, VAR, wh.old), mode=0o600)
        assert webhooks.post_signed(url, pending) == 401
    else:
        assert custom["rotation_phase"] == "verified" and custom["webhook_phase"] == "dual_accept"
        assert "%s_OLD=%s" % (VAR, wh.old) in _env_lines(lab.hosts[-1])   # the second one still accepts both

    done = _run(wh)
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-3000:]
    assert "resuming from " + ("verified" if kill_after == "old_secret_dropped" else "") in done.stdout
    data, custom, meta = _kv(wh)
    assert custom["rotation_phase"] == "finished" and custom["webhook_phase"] == "complete"
    assert data["signing_secret"] == pending, "a second new secret was made"
    assert "previous_signing_secret" not in data and meta["current_version"] > versions
    names = [e["event"] for e in _events(wh)]
    assert names.count("issued") == 1 and names.count("stored") == 1 and "resumed" in names
    if kill_after == "dual_accept":   # the stale service was found out and restarted
        last = [e for e in _events(wh) if e["event"] == "dual_accept"
                and e["consumer"] == "orders-receiver@" + lab.hosts[-1].name][-1]
        assert last["details"]["restarted"] in (True, "True")
    assert len(_patches(wh)) == len(wh.hook_ids), "each webhook is switched exactly once"
    for host, url in zip(lab.hosts, wh.urls):
        assert _env_lines(host) == ["LOG_LEVEL=info", "%s=%s" % (VAR, pending)]
        assert webhooks.post_signed(url, wh.old) == 401 and webhooks.post_signed(url, pending) == 200
    for hook_id in wh.hook_ids:
        assert wh.sender.test_delivery(hook_id)["delivered"] is True


def test_sender_down_keeps_dual_accept_and_a_rerun_finishes(wh):
    lab = wh.lab
    wh.sender.stop()
    try:
        failed = _run(wh, verbosity=3)
    finally:
        wh.sender.start()
    assert failed.returncode != 0
    assert "could NOT be switched" in failed.stdout and "stay in dual-accept" in failed.stdout, failed.stdout[-6000:]
    assert "could not reach the webhook sender" in failed.stdout
    data, custom, _meta = _kv(wh)
    new = data["signing_secret"]
    assert custom["rotation_phase"] == "deployed" and custom["webhook_phase"] == "dual_accept"
    assert data["previous_signing_secret"] == wh.old
    for host, url in zip(lab.hosts, wh.urls):
        lines = _env_lines(host)
        assert lines == ["LOG_LEVEL=info", "%s=%s" % (VAR, wh.old), "%s_NEW=%s" % (VAR, new),
                         "%s_OLD=%s" % (VAR, wh.old)], lines
        assert webhooks.post_signed(url, wh.old) == 200 and webhooks.post_signed(url, new) == 200
    # the sender still signs with the old secret, and its deliveries are still accepted
    for hook_id in wh.hook_ids:
        assert wh.sender.test_delivery(hook_id)["delivered"] is True
    failures = [e for e in _events(wh) if e["event"] == "failed"]
    assert failures and failures[-1]["details"]["step"] == "sender_switch"
    assert "sender_switched" not in [e["event"] for e in _events(wh)]

    done = _run(wh)
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-3000:]
    assert "resuming from deployed" in done.stdout
    data, custom, _meta = _kv(wh)
    assert data["signing_secret"] == new and custom["rotation_phase"] == "finished"
    for host, url in zip(lab.hosts, wh.urls):
        assert _env_lines(host) == ["LOG_LEVEL=info", "%s=%s" % (VAR, new)]
        assert webhooks.post_signed(url, wh.old) == 401 and webhooks.post_signed(url, new) == 200
    for hook_id in wh.hook_ids:
        assert wh.sender.test_delivery(hook_id)["delivered"] is True
    _no_secret([failed.stdout, failed.stderr, done.stdout, done.stderr,
                (lab.workdir / "rotation-audit.jsonl").read_text()],
               wh.old, new, wh.sender.admin_token, lab.openbao.token)
