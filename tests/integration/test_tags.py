"""Every playbook x every tag of the contract (preflight, issue, store, deploy, verify, revoke,
record, notify), alone (--tags X) and left out (--skip-tags X), against the real lab.

The invariant, checked after every run with independent clients (the demo provider's own key
list, OpenBao through hvac): every key the provider issued for the credential is either held by
the store (current or previous value) or revoked at the provider - nothing is ever issued and
left unstored. No run may end on an undefined variable; check_expiry prints or writes its
report whenever `record` is selected.

What runs for real and what is listed (this file is part of CI; about 100 s on 2 cores, most of
it ansible-playbook starting up): the inventories are minimal - a rest issuer (the demo provider)
on the OpenBao store with a `batch` consumer on a local host - and the runs go RUNNERS at a time,
each on its own credential. Real runs: everything that can issue, revoke or roll back - rotate and
emergency with issue, store, deploy, verify, revoke, record alone and left out; rollback with its
roll-back tags (store, deploy, verify, revoke) alone and left out; webhook_rotate with the same six
tags (the runs that stop before the receivers need no systemd host; --skip-tags revoke goes through
dual accept and the sender switch on a real receiver of the lab); check_expiry with all eight tags.
Listed with --list-tasks (which includes/tasks each selection keeps), plus one real run per
playbook among them: the tags that can neither issue nor revoke there (preflight and notify of
rotate, emergency and webhook_rotate; preflight, issue, record, notify of rollback;
--skip-tags record of webhook_rotate, the same path as --skip-tags revoke) and every tag of
discover_consumers (which only reads).
"""
import json
import re
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hvac
import pytest
import yaml

from tests.lab.ansible_runner import run_playbook

pytestmark = [pytest.mark.lab]

TAGS = ["preflight", "issue", "store", "deploy", "verify", "revoke", "record", "notify"]
UNDEFINED = re.compile(r"is undefined|undefined variable|UndefinedError|AnsibleUndefined", re.I)


def said(proc, text):
    """Whether the run's output says ``text`` (the YAML callback wraps long messages)."""
    return " ".join(text.split()) in " ".join(proc.stdout.replace("\\n", " ").split())


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[-44:].strip("-")


class Lab:
    """The credential of one test: its key at the provider, its secret in OpenBao, an inventory."""

    def __init__(self, openbao, provider, tmp_path, name):
        self.openbao, self.provider, self.tmp, self.name = openbao, provider, tmp_path, name
        self.kv = hvac.Client(url=openbao.addr, token=openbao.token).secrets.kv.v2
        self.path = "tags/" + name
        self.audit = tmp_path / "rotation-audit.jsonl"
        self.secrets = []

    def record(self, **extra):
        rec = {
            "type": "api_key", "rotation_contact": "team@example.org",
            "issuer": {
                "kind": "rest", "base_url": self.provider.url,
                "auth": {"type": "bearer", "token": "{{ lookup('ansible.builtin.env', 'PROVIDER_ADMIN_TOKEN') }}"},
                "create": {"method": "POST", "path": "/v1/api-keys", "body": {"name": self.name},
                           "secret_path": "api_key", "id_path": "id"},
                "revoke": {"method": "DELETE", "path": "/v1/api-keys/{id}"},
                "test": {"method": "GET", "path": "/v1/test", "header": "Authorization", "format": "Bearer {secret}"},
            },
            "store": {"kind": "vault_kv2", "url": self.openbao.addr, "mount": "secret", "path": self.path,
                      "field": "api_key"},
            "consumers": [{"name": "nightly", "kind": "batch", "hosts": "batch"}],
        }
        rec.update(extra)
        return rec

    def seed(self, in_flight=None):
        """A live key in the store; with in_flight=PHASE a second one pending over it (a rotation in flight)."""
        key_id, secret = self.provider.create_key(self.name)
        self.secrets.append(secret)
        data = {"api_key": secret, "key_id": key_id}
        if in_flight:
            new_id, new_secret = self.provider.create_key(self.name)
            self.secrets.append(new_secret)
            data = {"api_key": new_secret, "key_id": new_id, "previous_api_key": secret, "previous_key_id": key_id}
        self.kv.create_or_update_secret(path=self.path, secret=data, mount_point="secret")
        custom = {"rotation_phase": in_flight or "finished", "last_rotated": "2020-01-01T00:00:00Z",
                  "consumers": "nightly"}
        self.kv.update_metadata(path=self.path, custom_metadata=custom, mount_point="secret")
        return key_id

    def inventory(self, credentials=None):
        hosts = {"all": {
            "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
            "children": {"batch": {"hosts": {"batch1": {"ansible_connection": "local",
                                                        "ansible_python_interpreter": sys.executable}}}},
            "vars": {"rotation_credentials": credentials or {self.name: self.record()},
                     "rotation_audit_log": str(self.audit),
                     "rotation_incident_dir": str(self.tmp / "incidents")}}}
        path = self.tmp / "hosts.yml"
        path.write_text(yaml.safe_dump(hosts, sort_keys=False))
        return path

    def env(self):
        return dict(self.openbao.env(), PROVIDER_ADMIN_TOKEN=self.provider.admin_token,
                    WEBHOOK_SENDER_ADMIN_TOKEN=getattr(self, "sender_token", "tags-sender-token-never-sent"))

    def run(self, playbook, tag, skip, extra=None, list_tasks=False, inventory=None):
        args = {("skip_tags" if skip else "tags"): tag}
        proc = run_playbook("credops.rotation." + playbook, inventory=inventory or self.inventory(),
                            extra_vars=extra, env=self.env(), timeout=300, cwd=str(self.tmp),
                            list_tasks=list_tasks, **args)
        out = proc.stdout + proc.stderr
        for secret in self.secrets:
            assert secret not in out, "a planted secret value appears in the output"
        assert not UNDEFINED.search(out), out[-4000:]
        return proc

    def store(self):
        got = self.kv.read_secret_version(path=self.path, mount_point="secret", raise_on_deleted_version=True)
        meta = self.kv.read_secret_metadata(path=self.path, mount_point="secret")["data"]
        return got["data"]["data"], meta.get("custom_metadata") or {}

    def snapshot(self, old_id):
        """The state after a run, read with independent clients (hvac, the provider's key list)."""
        data, meta = self.store()
        keys = self.provider.keys()
        mine = [k for k in keys.values() if k["name"] == self.name]
        held = {data.get("key_id"), data.get("previous_key_id")} - {None}
        old_id = old_id or (mine[0]["id"] if mine else None)
        return {"phase": meta.get("rotation_phase"), "key_id": data.get("key_id"),
                "previous_key_id": data.get("previous_key_id"), "old_id": old_id,
                "old_status": keys[old_id]["status"] if old_id in keys else None,
                "new_id": next((k["id"] for k in mine if k["id"] != old_id), None),
                "issued": len(mine),
                "loose": [k["id"] for k in mine if k["status"] == "active" and k["id"] not in held]}

    def issued(self):
        return [k for k in self.provider.keys().values() if k["name"] == self.name]


# --- the runs: started all at once, a few at a time, when the first test of the file asks ---------
# ansible-playbook spends most of a run starting up and waiting on HTTP, so RUNNERS runs in
# parallel (each on its own credential) take about half the wall time of running them in turn.
RUNNERS = 3


class Runs:
    def __init__(self, openbao, provider, tmp_path_factory, wanted):
        self.openbao, self.provider = openbao, provider
        self.base = tmp_path_factory.mktemp("tags")  # here, in the main thread: mktemp is not thread-safe
        self.pool = ThreadPoolExecutor(RUNNERS)
        self.futures = {}
        self.wanted = wanted

    def get(self, key):
        if not self.futures:  # the first test queues every run the selected tests of the file need
            for job_key, job in JOBS.items():
                if job_key in self.wanted:
                    self.futures[job_key] = self.pool.submit(self._run, job_key, job)
        if key not in self.futures:
            self.futures[key] = self.pool.submit(self._run, key, JOBS[key])
        return self.futures[key].result()

    def _run(self, key, job):
        words = [k for k in key if isinstance(k, str)]
        name = "tg-" + _slug("-".join(words[:-1] + (["skip"] if key[-1] is True else []) + words[-1:]))
        lab = Lab(self.openbao, self.provider, Path(tempfile.mkdtemp(prefix=name[:30] + "-", dir=str(self.base))), name)
        return lab, job(lab, *key[1:])


def _keys_of(item):
    """The runs a collected test of this file reads."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    name = item.originalname
    if name == "test_other_tags_list_tasks":
        return [("list", params["playbook"]) + case for case in LISTED[params["playbook"]]]
    if name == "test_other_tags_one_real_run":
        return [("real",) + params["key"]]
    playbook = name[len("test_"):-len("_tag")] if name.endswith("_tag") else None
    return [(playbook, params["tag"], params["skip"])] if playbook else []


@pytest.fixture(scope="module")
def runs(openbao, provider, tmp_path_factory, request):
    wanted = set(key for item in request.session.items if item.module is request.module for key in _keys_of(item))
    r = Runs(openbao, provider, tmp_path_factory, wanted)
    yield r
    r.pool.shutdown(wait=True, cancel_futures=True)


def _job_rotate(lab, tag, skip):
    old_id = lab.seed()
    first = lab.run("rotate", tag, skip, extra={"credentials": [lab.name]})
    state = lab.snapshot(old_id)
    resumed = None
    if (tag, skip) in (("issue", False), ("revoke", True)) and first.returncode == 0:
        # a run without tags finishes what the tagged one left in flight, without issuing again
        resumed = lab.run("rotate", "all", False, extra={"credentials": [lab.name]})
    return first, state, resumed


def _job_emergency(lab, tag, skip):
    old_id = lab.seed()
    proc = lab.run("emergency", tag, skip, extra={"credential": lab.name, "incident": "INC-T1"})
    return proc, lab.snapshot(old_id)


def _job_rollback(lab, tag, skip):
    old_id = lab.seed(in_flight="deployed")
    proc = lab.run("rollback", tag, skip, extra={"credential": lab.name})
    return proc, lab.snapshot(old_id)


def _job_check_expiry(lab, tag, skip):
    lab.seed()
    fresh = lab.record(store=dict(lab.record()["store"], path=lab.path + "-fresh"))
    del fresh["rotation_contact"]
    lab.kv.create_or_update_secret(path=lab.path + "-fresh", secret={"api_key": "fresh-value-not-printed-5c"},
                                   mount_point="secret")
    lab.secrets.append("fresh-value-not-printed-5c")
    report = lab.tmp / "report.json"
    inventory = lab.inventory({lab.name: lab.record(), lab.name + "-fresh": fresh})
    proc = lab.run("check_expiry", tag, skip, inventory=inventory,
                   extra={"report_format": "json", "report_path": str(report), "check_expiry_read_endpoints": False})
    return proc, report


def _webhook_record(lab, receivers="receivers", sender_url="http://127.0.0.1:9", hook_ids=("wh_1",),
                    verify_url="http://{{ ansible_host }}:8095/webhook", deliveries=None):
    consumer = {"name": "orders-receiver", "kind": "systemd", "hosts": receivers,
                "env_file": "/etc/wh-tags/environment", "env_var": "TAGS_WEBHOOK_SECRET",
                "service": "wh-tags.service", "verify": {"url": verify_url, "status": 200}}
    if deliveries:
        consumer["deliveries"] = {"url": deliveries}
    return {
        "type": "webhook_secret", "rotation_contact": "orders@example.org",
        "issuer": {"kind": "generated", "length": 48},
        "store": {"kind": "vault_kv2", "url": lab.openbao.addr, "mount": "secret", "path": lab.path,
                  "field": "signing_secret"},
        "sender": {"base_url": sender_url,
                   "auth": {"type": "bearer", "token": "{{ lookup('ansible.builtin.env', 'WEBHOOK_SENDER_ADMIN_TOKEN') }}"},
                   "webhook_id": list(hook_ids),
                   "switch": {"method": "PATCH", "path": "/v1/webhooks/{id}", "body": {"secret": "{secret}"}},
                   "test": {"method": "POST", "path": "/v1/webhooks/{id}/test", "json": {"delivered": True}}},
        "consumers": [consumer],
    }


WEBHOOK_OLD = "whsec_tags_old_value_0b7e41"


def _job_webhook(lab, tag, skip, list_tasks=False):
    lab.secrets.append(WEBHOOK_OLD)
    lab.kv.create_or_update_secret(path=lab.path, secret={"signing_secret": WEBHOOK_OLD}, mount_point="secret")
    inventory = lab.inventory({lab.name: _webhook_record(lab)})
    # a receiver host that none of these runs may reach (it is never contacted)
    inventory.write_text(inventory.read_text().replace("batch:", "receivers:").replace("batch1:", "rcv1:"))
    return lab.run("webhook_rotate", tag, skip, extra={"credential": lab.name}, inventory=inventory,
                   list_tasks=list_tasks)


def _job_discover(lab, tag, skip, list_tasks=False):
    inventory = lab.inventory()
    text = yaml.safe_load(inventory.read_text())
    text["all"]["vars"]["discover_consumers_scan"] = False  # no host is scanned: the steps, not the scans
    inventory.write_text(yaml.safe_dump(text, sort_keys=False))
    return lab.run("discover_consumers", tag, skip, inventory=inventory, list_tasks=list_tasks,
                   extra={"discover_consumers_report_path": str(lab.tmp / "drift.json")})


def _job_list(playbook):
    extra = {"rotate": {"credentials": ["x"]}, "emergency": {"credential": "x", "incident": "INC-L"},
             "rollback": {"credential": "x"}}.get(playbook)

    def job(lab, tag, skip):
        if playbook == "webhook_rotate":
            return _job_webhook(lab, tag, skip, list_tasks=True)
        if playbook == "discover_consumers":
            return _job_discover(lab, tag, skip, list_tasks=True)
        return lab.run(playbook, tag, skip, extra=extra, list_tasks=True)
    return job


ISSUING = ["issue", "store", "deploy", "verify", "revoke", "record"]
CASES = [(t, s) for t in ISSUING for s in (False, True)]
IDS = ["%s%s" % ("skip-" if s else "", t) for t, s in CASES]
ROLLBACK_UNIT = ["store", "deploy", "verify", "revoke"]
ALL = [(t, s) for t in TAGS for s in (False, True)]
WEBHOOK_REAL = [c for c in CASES if c not in (("revoke", True), ("record", True))]

# Checked with --list-tasks: the tags that can neither issue nor revoke for these playbooks, plus
# --skip-tags record of webhook_rotate (the same path as --skip-tags revoke, run for real below).
LISTED = {
    "rotate": [(t, s) for t in ("preflight", "notify") for s in (False, True)],
    "emergency": [(t, s) for t in ("preflight", "notify") for s in (False, True)],
    "webhook_rotate": [(t, s) for t in ("preflight", "notify") for s in (False, True)] + [("record", True)],
    "rollback": [(t, s) for t in ("preflight", "issue", "record", "notify") for s in (False, True)],
    "discover_consumers": ALL,
}
# ... and one real run each of what is listed
LISTED_REAL = {("rotate", "notify", True): lambda lab, t, s: _job_rotate(lab, t, s)[0],
               ("emergency", "preflight", False): lambda lab, t, s: _job_emergency(lab, t, s)[0],
               ("webhook_rotate", "notify", False): _job_webhook,
               ("rollback", "record", False): lambda lab, t, s: _job_rollback(lab, t, s)[0],
               ("discover_consumers", "notify", True): _job_discover,
               ("discover_consumers", "issue", False): _job_discover}


def _ignoring_playbook(job):
    """``job(lab, tag, skip)`` called as the runner calls every job, ``(lab, playbook, tag, skip)``."""
    return lambda lab, _pb, t, s: job(lab, t, s)


JOBS = {}
JOBS.update((("rotate", t, s), _job_rotate) for t, s in CASES)
JOBS.update((("emergency", t, s), _job_emergency) for t, s in CASES)
JOBS.update((("rollback", t, s), _job_rollback) for t in ROLLBACK_UNIT for s in (False, True))
JOBS.update((("check_expiry", t, s), _job_check_expiry) for t, s in ALL)
JOBS.update((("webhook_rotate", t, s), _job_webhook) for t, s in WEBHOOK_REAL)
JOBS.update((("list", pb, t, s), _ignoring_playbook(_job_list(pb))) for pb, cases in LISTED.items() for t, s in cases)
JOBS.update((("real",) + key, _ignoring_playbook(job)) for key, job in LISTED_REAL.items())


# --- rotate.yml and emergency.yml ------------------------------------------------------------------
# The phase the store ends in, and whether a new key was issued. A step runs only from the phase the
# step before it left; issue+store, deploy+verify (of the consumers) and revoke+record are one step
# each. Seeded: one live key, phase finished.
ROTATE = {
    ("issue", False): ("pending", True), ("store", False): ("pending", True),
    ("deploy", False): ("finished", False), ("verify", False): ("finished", False),
    ("revoke", False): ("finished", False), ("record", False): ("finished", False),
    ("issue", True): ("finished", False), ("store", True): ("finished", False),
    ("deploy", True): ("pending", True), ("verify", True): ("pending", True),
    ("revoke", True): ("verified", True), ("record", True): ("verified", True),
}
# emergency.yml: the same, except that nothing but the revoke step itself may revoke the
# compromised key, and without it the store keeps that key (the rotation stops at verified).
EMERGENCY_REVOKES = {("revoke", False), ("issue", True), ("store", True), ("deploy", True), ("verify", True),
                     ("record", True)}


def _ok(proc):
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


@pytest.mark.parametrize("tag,skip", CASES, ids=IDS)
def test_rotate_tag(runs, tag, skip):
    lab, (proc, state, resumed) = runs.get(("rotate", tag, skip))
    _ok(proc)
    assert not state["loose"], "live key(s) neither in the store nor revoked: %s" % state["loose"]
    phase, issued = ROTATE[(tag, skip)]
    assert state["phase"] == phase
    assert state["issued"] == (2 if issued else 1)
    assert state["old_status"] == ("revoked" if phase == "finished" and issued else "active")
    if phase != "finished":
        assert state["previous_key_id"] == state["old_id"] and said(proc, "Run again without --tags/--skip-tags")
    else:
        assert said(proc, "Rotated: %s." % lab.name if issued else "Rotated: nothing.")
    if resumed is not None:
        _ok(resumed)
        after = lab.snapshot(state["old_id"])
        assert (after["phase"], after["issued"], after["old_status"]) == ("finished", 2, "revoked")
        assert not after["loose"]


@pytest.mark.parametrize("tag,skip", CASES, ids=IDS)
def test_emergency_tag(runs, tag, skip):
    lab, (proc, state) = runs.get(("emergency", tag, skip))
    _ok(proc)
    assert not state["loose"], "live key(s) neither in the store nor revoked: %s" % state["loose"]
    phase, issued = ROTATE[(tag, skip)]
    assert state["phase"] == phase
    assert state["issued"] == (2 if issued else 1)
    revoked = (tag, skip) in EMERGENCY_REVOKES
    assert state["old_status"] == ("revoked" if revoked else "active")
    if not revoked:  # the compromised key stays known to the store, and the run says it is not revoked
        assert state["old_id"] in (state["key_id"], state["previous_key_id"]) and said(proc, "NOT revoked")
    assert (lab.tmp / "incidents" / "INC-T1.md").exists() == ((tag == "record") != skip)


# --- rollback.yml, seeded with a rotation in flight (phase deployed) -----------------------------
# The roll back - the store takes the previous value back, the consumers get it, the new value is
# revoked - is one step for the tags store, deploy, verify and revoke.

@pytest.mark.parametrize("tag,skip", [(t, s) for t in ROLLBACK_UNIT for s in (False, True)],
                         ids=["%s%s" % ("skip-" if s else "", t) for t in ROLLBACK_UNIT for s in (False, True)])
def test_rollback_tag(runs, tag, skip):
    lab, (proc, state) = runs.get(("rollback", tag, skip))
    _ok(proc)
    assert not state["loose"], "live key(s) neither in the store nor revoked: %s" % state["loose"]
    new_status = lab.provider.keys()[state["new_id"]]["status"]
    if not skip:
        assert state["phase"] == "rolled_back" and state["key_id"] == state["old_id"]
        assert (new_status, state["old_status"]) == ("revoked", "active")
        assert said(proc, "Rolled back %s" % lab.name)
    else:
        assert state["phase"] == "deployed" and (state["key_id"], state["previous_key_id"]) == (state["new_id"], state["old_id"])
        assert new_status == state["old_status"] == "active"
        assert said(proc, "checked only, nothing was changed")


# --- check_expiry.yml: every tag for real. An overdue credential (so notify fails the run) and one
# without rotation_contact (a finding, not a refusal).

@pytest.mark.parametrize("tag,skip", ALL, ids=["%s%s" % ("skip-" if s else "", t) for t, s in ALL])
def test_check_expiry_tag(runs, tag, skip):
    lab, (proc, report) = runs.get(("check_expiry", tag, skip))
    notify, record = (tag == "notify") != skip, (tag == "record") != skip
    assert (proc.returncode != 0) == notify, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert report.exists() == record
    if record:
        rows = dict((r["credential"], r) for r in json.loads(report.read_text()))
        assert rows[lab.name]["status"] == "overdue" and rows[lab.name]["findings"] == []
        assert rows[lab.name + "-fresh"]["status"] == "ok" and "no owner" in rows[lab.name + "-fresh"]["findings"][0]
    if notify:
        assert said(proc, "1 credential(s) overdue for rotation")
    else:
        assert said(proc, "Check expiry: 2 credential(s) validated")
        if not record:
            assert said(proc, "no report (the record step was not selected)")
    assert len(lab.issued()) == 1  # nothing issued: the seeded key only


# --- webhook_rotate.yml: a generated webhook secret. The runs that never reach a receiver (every
# tag but --skip-tags revoke/record: at most issue+store) are real and need no systemd host (the
# receiver host is only named); --skip-tags revoke goes through dual accept and the sender switch on
# a real receiver below; --skip-tags record takes the same path (revoke and record are one step).

WEBHOOK_ISSUES = {("issue", False), ("store", False), ("deploy", True), ("verify", True)}


@pytest.mark.parametrize("tag,skip", WEBHOOK_REAL, ids=[i for c, i in zip(CASES, IDS) if c in WEBHOOK_REAL])
def test_webhook_rotate_tag(runs, tag, skip):
    lab, proc = runs.get(("webhook_rotate", tag, skip))
    _ok(proc)
    data, meta = lab.store()
    if (tag, skip) in WEBHOOK_ISSUES:
        # issued and stored together: the new secret pending, the old one kept beside it
        assert meta["rotation_phase"] == "pending" and data["previous_signing_secret"] == WEBHOOK_OLD
        assert data["signing_secret"] != WEBHOOK_OLD and len(data["signing_secret"]) >= 48
        assert said(proc, "the new secret is stored as pending")
    else:
        assert data == {"signing_secret": WEBHOOK_OLD} and meta.get("rotation_phase") is None
        assert said(proc, "nothing in flight and no new secret made")


# --- what --list-tasks shows for the tags that can neither issue nor revoke ----------------------
# (which plays/tasks each selection keeps; tasks inside dynamic includes are decided at run time,
# so the listing shows the includes) plus one real run of each playbook among them.

def _listed(proc):
    return [line.split("\tTAGS:")[0].strip() for line in proc.stdout.splitlines() if "\tTAGS:" in line]


MUTATING = {
    "rotate": ["credops.rotation.deploy : Deploy | write the environment files, restart each service once, verify and record each consumer",
               "credops.rotation.deploy : Deploy each other credential this host holds"],
    "emergency": ["Emergency | REVOKE the compromised value now",
                  "credops.rotation.deploy : Deploy | write the environment files, restart each service once, verify and record each consumer",
                  "credops.rotation.deploy : Deploy each other credential this host holds"],
    "webhook_rotate": ["Accept both secrets, restart, verify both", "Switch the sender and verify",
                       "Accept only the new secret, restart, verify the old one is rejected",
                       "Finish the rotation in the store, the audit trail and the chat"],
    "rollback": ["Rollback | the store, the issuer where needed, and the consumers to restore",
                 "Put the previous value back and verify", "Revoke the new value"],
    "discover_consumers": [],
}


@pytest.mark.parametrize("playbook", sorted(LISTED))
def test_other_tags_list_tasks(runs, playbook):
    for tag, skip in LISTED[playbook]:
        _lab, proc = runs.get(("list", playbook, tag, skip))
        _ok(proc)
        listed = _listed(proc)
        assert listed, proc.stdout[-2000:]
        if playbook == "webhook_rotate" and (tag, skip) == ("record", True):
            assert "Switch the sender and verify" in listed
            assert not set(MUTATING[playbook][2:]) & set(listed)  # nothing drops the old secret
        elif not skip:  # alone, these tags keep no step that changes something
            assert not set(MUTATING[playbook]) & set(listed), (tag, listed)
        else:
            assert set(MUTATING[playbook]) <= set(listed), (tag, skip, listed)
        if playbook == "discover_consumers":
            assert "Validate the inventory" in listed and "Summary" in listed


@pytest.mark.parametrize("key", sorted(LISTED_REAL), ids=["-".join(str(k) for k in key) for key in sorted(LISTED_REAL)])
def test_other_tags_one_real_run(runs, key):
    lab, proc = runs.get(("real",) + key)
    playbook = key[0]
    if playbook == "discover_consumers" and key[1:] == ("issue", False):
        _ok(proc)
        assert said(proc, "select no step of discover_consumers")
        return
    _ok(proc)
    if playbook == "rotate":  # --skip-tags notify: the whole rotation, without the chat
        assert lab.snapshot(None)["phase"] == "finished" and said(proc, "Rotated: %s." % lab.name)
    elif playbook == "emergency":  # --tags preflight: checks and reads only
        assert lab.snapshot(None)["phase"] == "finished" and said(proc, "no new value issued in this run")
        assert said(proc, "NOT revoked")
    elif playbook == "rollback":  # --tags record: nothing of its own here
        assert said(proc, "checked only, nothing was changed")
    elif playbook == "webhook_rotate":
        assert said(proc, "nothing in flight and no new secret made")
    elif playbook == "discover_consumers":
        assert (lab.tmp / "drift.json").exists() and said(proc, "steps run: preflight, verify, record")
    if playbook in ("rotate", "emergency", "rollback"):
        assert not lab.snapshot(None)["loose"]


# --- webhook_rotate.yml --skip-tags revoke on a real receiver (a systemd host of the lab) --------

@pytest.mark.hosts
def test_webhook_rotate_skip_revoke_stops_in_dual_accept(rotation_lab, tmp_path):
    from tests.lab import webhooks
    from tests.lab.webhook_sender import WebhookSender

    lab, host = rotation_lab, rotation_lab.hosts[0]
    sender = WebhookSender(tmp_path / "sender", binds=["127.0.0.1", lab.systemd.gateway])
    sender.start()
    try:
        run = Lab(lab.openbao, lab.provider, tmp_path, "tg-webhook-skip-revoke-real")
        run.sender_token = sender.admin_token
        old = "whsec_tags_real_" + run.name[-6:] + "_4d1f0a9c3b2e"
        run.secrets.append(old)
        run.kv.create_or_update_secret(path=run.path, secret={"signing_secret": old}, mount_point="secret")
        url = webhooks.install_receiver(lab, host, old, name="wh-tags", env_file="/etc/wh-tags/environment",
                                        env_var="TAGS_WEBHOOK_SECRET", port=8095)
        hook = sender.create_webhook(url, old)
        record = _webhook_record(run, sender_url=sender.url, hook_ids=[hook],
                                 deliveries="http://{{ ansible_host }}:8095/deliveries")
        inventory = lab.write_inventory(path=tmp_path / "inv.yml", credentials={run.name: record},
                                        groups={"receivers": [host.name]})
        proc = run.run("webhook_rotate", "revoke", True, extra={"credential": run.name}, inventory=inventory)
        _ok(proc)
        data, meta = run.store()
        new = data["signing_secret"]
        run.secrets.append(new)
        # stopped after the sender switch: verified, the old secret kept in the store and accepted
        assert meta["rotation_phase"] == "verified" and data["previous_signing_secret"] == old and new != old
        assert webhooks.post_signed(url, old) == 200 and webhooks.post_signed(url, new) == 200
        assert sender.test_delivery(hook)["delivered"] is True
        assert said(proc, "stopped before dropping the old secret")
        for text in (proc.stdout, proc.stderr):
            assert new not in text and old not in text
    finally:
        sender.stop()
