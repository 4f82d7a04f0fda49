"""Every playbook run the way AWX / AAP runs it: ansible-runner with an AWX-shaped private
data dir, against the lab.

AWX writes a private data dir for each job and hands it to ansible-runner inside the execution
environment; this module writes the same shape and runs the real `ansible_runner.run`:
- env/extravars: the survey answers plus the awx_* variables AWX adds (awx_user_name, ...);
- env/envvars: what the job's credentials inject. The custom credential types are rendered from
  awx/credential_types.yml exactly as AWX renders injectors (Jinja2, sandboxed), so these runs
  also prove the injected names are the ones the collection reads; AWS as AWX's built-in
  "Amazon Web Services" type injects it;
- env/ssh_key: the "Machine" credential's private key (runner loads it into an ssh-agent; the
  inventory names no key file, as in AWX);
- inventory/hosts: from the lab; project/: the project checkout (the playbooks), while the
  collection itself is built with ansible-galaxy and installed outside the project, where the
  EE has it (/usr/share/ansible/collections), found through ANSIBLE_COLLECTIONS_PATH; no
  project ansible.cfg (ANSIBLE_CONFIG names an empty file).

After each run: the status and rc, the effect with an independent client (hvac, the
provider's API, the hosts' files), and the planted secret values (provider keys, store values,
the Vault token, the AppRole secret id, the provider/sender admin tokens, the AWS secret key,
the SSH private key) searched in every byte under the private data dir except its input
files (env/) and ansible-runner's own echo of that input (artifacts/<ident>/command, "env":
runner records the environment it started ansible-playbook with; AWX does not keep that file).
"""
import datetime
import json
import secrets as pysecrets
import shutil
import sys
from pathlib import Path

import ansible_runner
import hvac
import pytest
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tests.integration import _galaxy
from tests.lab import scenarios, webhooks
from tests.lab.ansible_runner import ROOT, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.hosts]

KV = scenarios.KV_MOUNT
AWS_SECRET = "planted-aws-secret-" + pysecrets.token_hex(12)
APPROLE_MOUNT = "credops-awx-approle"


# --- the "execution environment": the collection built and installed once ---------------------

@pytest.fixture(scope="module")
def ee(tmp_path_factory):
    """The collection built with ansible-galaxy and installed outside the project, where an EE has
    it (/usr/share/ansible/collections)."""
    tmp = tmp_path_factory.mktemp("ee")
    collections = _galaxy.install(_galaxy.build(tmp), tmp / "usr-share-ansible-collections", tmp)
    cfg = tmp / "empty-ansible.cfg"
    cfg.write_text("")
    return type("EE", (), dict(collections=collections, empty_cfg=cfg, home=tmp))


# --- AWX's credential injection, from awx/credential_types.yml --------------------------------

def _credential_types():
    data = yaml.safe_load((ROOT / "awx" / "credential_types.yml").read_text())
    return {t["name"]: t for t in data["credops_credential_types"]}


def inject(type_name, **inputs):
    """The environment a credential of this custom type injects, rendered as AWX renders it."""
    ctype = _credential_types()[type_name]
    fields = {f["id"] for f in ctype["inputs"]["fields"]}
    assert set(inputs) <= fields and set(ctype["inputs"].get("required", [])) <= set(inputs)
    jinja = ImmutableSandboxedEnvironment()
    return {name: jinja.from_string(template).render(**inputs)
            for name, template in ctype["injectors"]["env"].items()}


def aws_builtin(lab):
    """AWX's built-in "Amazon Web Services" type: the key pair (moto accepts any secret)."""
    return {"AWS_ACCESS_KEY_ID": lab.moto.access_key, "AWS_SECRET_ACCESS_KEY": AWS_SECRET}


# --- the private data dir -------------------------------------------------------------------

def awx_extravars(job_id, template, **survey):
    """Survey answers plus the variables AWX adds to every job's extra vars."""
    meta = {"user_name": "alice-awx", "user_id": 7, "user_email": "alice@example.org",
            "user_first_name": "Alice", "user_last_name": "Ops", "job_id": job_id,
            "job_launch_type": "manual", "job_template_id": 40 + job_id % 10,
            "job_template_name": template, "inventory_id": 3, "inventory_name": "credops production",
            "project_revision": "0123456789abcdef0123456789abcdef01234567", "project_scm_branch": "main"}
    extravars = dict(survey)
    for key, value in meta.items():
        extravars["awx_" + key] = value
        extravars["tower_" + key] = value
    return extravars


class Job:
    """One AWX-shaped private data dir and its ansible-runner run."""

    def __init__(self, tmp, lab, ee, name, inventory, extravars, envvars, playbook):
        self.lab, self.name, self.playbook = lab, name, playbook
        self.pdd = tmp / name
        self.out = self.pdd / "out"            # the run's own files (audit trail, incidents, reports)
        self.out.mkdir(parents=True)
        (self.pdd / "env").mkdir()
        (self.pdd / "inventory").mkdir()
        # the project checkout: AWX clones the repository; the job template names playbooks/<name>.yml
        shutil.copytree(ROOT / "playbooks", self.pdd / "project" / "playbooks")
        inventory["all"]["vars"].update({"rotation_audit_log": str(self.out / "rotation-audit.jsonl"),
                                         "rotation_incident_dir": str(self.out / "incidents")})
        # the Machine credential's key comes through env/ssh_key (an ssh-agent), not the inventory
        for group in inventory["all"].get("children", {}).values():
            for hostvars in (group.get("hosts") or {}).values():
                if hostvars and "ansible_ssh_private_key_file" in hostvars:
                    del hostvars["ansible_ssh_private_key_file"]
                    hostvars["ansible_ssh_common_args"] = hostvars["ansible_ssh_common_args"].replace(
                        " -o IdentitiesOnly=yes", "")
        (self.pdd / "inventory" / "hosts").write_text(yaml.safe_dump(inventory, sort_keys=False))
        (self.pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars, sort_keys=False))
        env = {
            "ANSIBLE_CONFIG": str(ee.empty_cfg),
            "ANSIBLE_COLLECTIONS_PATH": str(ee.collections),
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCAL_TEMP": str(ee.home / "ansible-local"),
            "HOME": str(ee.home),
            "PATH": str(Path(sys.executable).parent) + ":/usr/sbin:/usr/bin:/sbin:/bin",
            # what AWX sets for every job
            "JOB_ID": str(extravars.get("awx_job_id", 0)),
            "AWX_HOST": "https://awx.example.org",
            "PROJECT_REVISION": extravars.get("awx_project_revision", ""),
        }
        env.update(envvars)
        (self.pdd / "env" / "envvars").write_text(yaml.safe_dump(env, sort_keys=False))
        (self.pdd / "env" / "ssh_key").write_text(lab.systemd.ssh_key.read_text())
        (self.pdd / "env" / "settings").write_text(yaml.safe_dump({"suppress_ansible_output": True}))
        self.result = None

    def run(self, timeout=300):
        self.result = ansible_runner.run(private_data_dir=str(self.pdd), playbook=self.playbook,
                                         ident=self.name, quiet=True, timeout=timeout)
        return self.result

    @property
    def artifacts(self):
        return self.pdd / "artifacts" / self.name

    def stdout(self):
        return (self.artifacts / "stdout").read_text(errors="replace")

    def events(self):
        return [json.loads(p.read_text()) for p in sorted((self.artifacts / "job_events").glob("*.json"))]

    def audit(self):
        path = self.out / "rotation-audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []

    def outputs(self):
        """(relative path, bytes) of every output file under the private data dir."""
        for path in sorted(p for p in self.pdd.rglob("*") if p.is_file()):
            rel = path.relative_to(self.pdd)
            if rel.parts[0] == "env":
                continue                      # the input AWX wrote
            data = path.read_bytes()
            if rel.parts[0] == "artifacts" and rel.name == "command":
                # ansible-runner's echo of its input: everything but the environment is searched
                record = json.loads(data)
                assert set(record) == {"command", "cwd", "env"}
                data = json.dumps({"command": record["command"], "cwd": record["cwd"]}).encode()
            yield str(rel), data

    def leaks(self, planted):
        """How many (file, planted value) pairs match; names of files only, never values."""
        found = []
        for rel, data in self.outputs():
            for label, value in planted.items():
                if value and value.encode() in data:
                    found.append("%s in %s" % (label, rel))
        return found

    def diagnosis(self, planted):
        """The end of stdout for a failure message, with every planted value masked."""
        text = self.stdout()[-5000:] if (self.artifacts / "stdout").exists() else "(no stdout)"
        for value in planted.values():
            if value:
                text = text.replace(value, "<planted>")
        return text


def _planted(lab, *values, **named):
    base = {"vault token": lab.openbao.token, "provider admin token": lab.provider.admin_token,
            "aws secret key": AWS_SECRET,
            # the key's base64 lines after the first (that one is the same for every ed25519 key)
            "ssh private key": lab.systemd.ssh_key.read_text().splitlines()[2]}
    base.update({"value %d" % i: v for i, v in enumerate(values)})
    base.update(named)
    assert all(len(v) >= 12 for v in base.values() if v), "a planted value too short to search for"
    return base


def _key_statuses(lab, old, new):
    """The provider's answer to the old and the new key (HTTP statuses of its test endpoint)."""
    return lab.provider.test_key(old), lab.provider.test_key(new)


def _vault_token_env(lab):
    return inject("credops Vault/OpenBao token", url=lab.openbao.addr, token=lab.openbao.token)


def _provider_env(lab):
    return inject("credops key provider admin token", token=lab.provider.admin_token)


def _api_key(lab, name, host):
    """A fresh API key (provider, store, the demo consumer on one host), its record, its inventory."""
    old_id, old_secret = scenarios.seed_api_key(lab, name, hosts=[host])
    record = scenarios.api_key_record(lab, name, group="web")
    inventory = lab.inventory(groups={"web": [host.name]}, credentials={name: record})
    return old_id, old_secret, inventory


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    return tmp_path_factory.mktemp("awx-jobs")


# --- the playbooks ------------------------------------------------------------------------------

def test_rotate(rotation_lab, ee, jobs):
    lab, host = rotation_lab, rotation_lab.hosts[0]
    name = "awx-rotate"
    old_id, old_secret, inventory = _api_key(lab, name, host)
    env = dict(_vault_token_env(lab), **_provider_env(lab), **aws_builtin(lab))
    job = Job(jobs, lab, ee, name, inventory,
              awx_extravars(101, "credops rotate", credentials=[name]), env, "playbooks/rotate.yml")
    r = job.run()
    data, meta = scenarios.kv_read(lab, name)
    planted = _planted(lab, old_secret, data["api_key"])
    assert r.status == "successful" and r.rc == 0, job.diagnosis(planted)
    # the rotation happened: checked with hvac, the provider's API and the host's file
    assert data["key_id"] != old_id and meta["custom_metadata"]["rotation_phase"] == "finished"
    # (secrets go into local variables first: an assertion's message shows values, never these)
    statuses = _key_statuses(lab, old_secret, data["api_key"])
    assert statuses == (401, 200)
    on_host = "PAYMENT_API_KEY=" + data["api_key"] in host.read_file("/etc/application/environment").splitlines()
    assert on_host
    # runner's record of the run: events, stats
    events = job.events()
    assert any(e["event"] == "playbook_on_stats" for e in events)
    assert r.stats["failures"] == {} and r.stats["dark"] == {}
    assert job.leaks(planted) == []
    # control: the search reads every event and finds what it looks for where it is (the input)
    assert sum(1 for rel, _data in job.outputs() if "/job_events/" in rel) == len(events) > 10
    in_input = lab.openbao.token.encode() in (job.pdd / "env" / "envvars").read_bytes()
    assert in_input
    entries = [e for e in job.audit() if e["credential"] == name]
    assert {"issued", "stored", "deployed", "verified", "revoked", "finished"} <= {e["event"] for e in entries}
    # the actor is the AWX user who launched the job (AWX passes it as the extra var awx_user_name)
    assert {e["actor"] for e in entries} == {"alice-awx"}


def test_emergency(rotation_lab, ee, jobs):
    lab, host = rotation_lab, rotation_lab.hosts[0]
    name = "awx-emergency"
    old_id, old_secret, inventory = _api_key(lab, name, host)
    since = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    env = dict(_vault_token_env(lab), **_provider_env(lab), **aws_builtin(lab))
    job = Job(jobs, lab, ee, name, inventory,
              awx_extravars(102, "credops emergency", credential=name, incident="INC-AWX-1",
                            compromised_since=since), env, "playbooks/emergency.yml")
    r = job.run()
    data, meta = scenarios.kv_read(lab, name)
    planted = _planted(lab, old_secret, data["api_key"])
    assert r.status == "successful" and r.rc == 0, job.diagnosis(planted)
    statuses = _key_statuses(lab, old_secret, data["api_key"])
    assert statuses == (401, 200) and data["key_id"] != old_id
    assert meta["custom_metadata"]["rotation_phase"] == "finished"
    assert (job.out / "incidents" / "INC-AWX-1.md").exists()
    entries = [e for e in job.audit() if e["credential"] == name]
    assert entries and entries[0]["event"] == "revoked" and {e.get("incident") for e in entries} == {"INC-AWX-1"}
    assert job.leaks(planted) == []


def test_rollback(rotation_lab, ee, jobs):
    lab, host = rotation_lab, rotation_lab.hosts[0]
    name = "awx-rollback"
    old_id, old_secret, inventory = _api_key(lab, name, host)
    # a rotation left in flight after the store step (set up outside AWX, with ansible-playbook)
    setup_inv = jobs / ("%s-setup.yml" % name)
    setup_inv.write_text(yaml.safe_dump(inventory))
    proc = run_playbook("playbooks/rotate.yml", inventory=setup_inv, env=lab.env(), tags="issue,store",
                        extra_vars={"credentials": [name], "rotation_audit_log": str(jobs / "setup-audit.jsonl")})
    data, meta = scenarios.kv_read(lab, name)
    assert proc.returncode == 0 and meta["custom_metadata"]["rotation_phase"] == "pending"
    new_secret = data["api_key"]
    env = dict(_vault_token_env(lab), **_provider_env(lab), **aws_builtin(lab))
    job = Job(jobs, lab, ee, name, inventory,
              awx_extravars(103, "credops rollback", credential=name, reason="INC-AWX-2 bad deploy"),
              env, "playbooks/rollback.yml")
    r = job.run()
    planted = _planted(lab, old_secret, new_secret)
    assert r.status == "successful" and r.rc == 0, job.diagnosis(planted)
    data, meta = scenarios.kv_read(lab, name)
    assert data["key_id"] == old_id and meta["custom_metadata"]["rotation_phase"] == "rolled_back"
    statuses = _key_statuses(lab, old_secret, new_secret)
    assert statuses == (200, 401)
    assert job.leaks(planted) == []


def test_webhook_rotate(rotation_lab, ee, jobs, webhook_sender):
    sender = webhook_sender
    lab, host = rotation_lab, rotation_lab.hosts[0]
    name = "awx-webhook"
    service, port, env_file, var = "awx-wh-receiver", 8093, "/etc/awx-wh-receiver/environment", "ORDERS_WEBHOOK_SECRET"
    old = "whsec_" + pysecrets.token_urlsafe(32)
    client = hvac.Client(url=lab.openbao.addr, token=lab.openbao.token)
    client.secrets.kv.v2.create_or_update_secret(path="webhooks/" + name, mount_point=KV,
                                                 secret={"signing_secret": old})
    url = webhooks.install_receiver(lab, host, old, name=service, env_file=env_file, env_var=var, port=port)
    hook_id = sender.create_webhook(url, old)
    record = {
        "type": "webhook_secret", "risk": "high", "rotation_contact": "orders@example.org",
        "issuer": {"kind": "generated", "length": 48},
        "store": {"kind": "vault_kv2", "url": "{{ vault_addr }}", "mount": KV, "path": "webhooks/" + name,
                  "field": "signing_secret"},
        "sender": {"base_url": sender.url,
                   "auth": {"type": "bearer", "token": "{{ lookup('ansible.builtin.env', 'SENDER_ADMIN_TOKEN') }}"},
                   "webhook_id": [hook_id],
                   "switch": {"method": "PATCH", "path": "/v1/webhooks/{id}", "body": {"secret": "{secret}"}},
                   "test": {"method": "POST", "path": "/v1/webhooks/{id}/test", "json": {"delivered": True}}},
        "consumers": [{"name": "orders-receiver", "kind": "systemd", "hosts": "receivers", "env_file": env_file,
                       "env_var": var, "service": service + ".service",
                       "verify": {"url": "http://{{ ansible_host }}:%d/webhook" % port, "status": 200},
                       "deliveries": {"url": "http://{{ ansible_host }}:%d/deliveries" % port}}],
    }
    inventory = lab.inventory(groups={"receivers": [host.name]}, credentials={name: record})
    env = dict(_vault_token_env(lab), **inject("credops webhook sender admin token", token=sender.admin_token))
    job = Job(jobs, lab, ee, name, inventory, awx_extravars(104, "credops webhook rotate", credential=name),
              env, "playbooks/webhook_rotate.yml")
    r = job.run()
    data = client.secrets.kv.v2.read_secret_version(path="webhooks/" + name, mount_point=KV,
                                                    raise_on_deleted_version=True)["data"]["data"]
    new = data["signing_secret"]
    planted = _planted(lab, old, new, **{"sender admin token": sender.admin_token})
    assert r.status == "successful" and r.rc == 0, job.diagnosis(planted)
    changed = new != old
    statuses = (webhooks.post_signed(url, old), webhooks.post_signed(url, new))
    assert changed and statuses == (401, 200)
    assert job.leaks(planted) == []


def _approle(lab, name):
    """An AppRole (own auth mount) allowed to read the credential's KV path: (role_id, secret_id)."""
    api = lab.openbao.api
    try:
        api("POST", "sys/auth/" + APPROLE_MOUNT, {"type": "approle"})
    except OSError:
        pass                                  # mounted by an earlier run of this module in the session
    api("PUT", "sys/policies/acl/" + name, {"policy": (
        'path "%s/data/api-credentials/%s" { capabilities = ["read"] }\n'
        'path "%s/metadata/api-credentials/%s" { capabilities = ["read"] }\n' % (KV, name, KV, name))})
    api("POST", "auth/%s/role/%s" % (APPROLE_MOUNT, name), {"token_policies": [name], "token_ttl": "10m"})
    role_id = api("GET", "auth/%s/role/%s/role-id" % (APPROLE_MOUNT, name))["data"]["role_id"]
    secret_id = api("POST", "auth/%s/role/%s/secret-id" % (APPROLE_MOUNT, name))["data"]["secret_id"]
    return role_id, secret_id


def test_check_expiry_overdue_fails_the_job(rotation_lab, ee, jobs):
    """An overdue credential fails the job (AWX shows it failed, a notification fires). The store is
    read with the AppRole credential type (VAULT_ROLE_ID / VAULT_SECRET_ID), no token at all."""
    lab = rotation_lab
    name = "awx-expiry"
    value = "sk_live_" + pysecrets.token_hex(20)
    client = hvac.Client(url=lab.openbao.addr, token=lab.openbao.token)
    client.secrets.kv.v2.create_or_update_secret(path="api-credentials/" + name, mount_point=KV,
                                                 secret={"api_key": value, "key_id": "k-1"})
    client.secrets.kv.v2.update_metadata(path="api-credentials/" + name, mount_point=KV,
                                         custom_metadata={"last_rotated": "2020-01-01T00:00:00Z",
                                                          "rotation_phase": "finished"})
    role_id, secret_id = _approle(lab, name)
    record = scenarios.api_key_record(lab, name, group="web")
    record["store"].update({"auth_method": "approle", "approle_mount": APPROLE_MOUNT})
    record["consumers"] = [{"name": "batch", "kind": "batch", "hosts": "localhost"}]
    inventory = lab.inventory(groups={}, credentials={name: record})
    env = inject("credops Vault/OpenBao AppRole", url=lab.openbao.addr, role_id=role_id, secret_id=secret_id)
    assert "VAULT_TOKEN" not in env
    report = jobs / name / "out" / "report.json"
    job = Job(jobs, lab, ee, name, inventory,
              awx_extravars(105, "credops check expiry", report_format="json", report_path=str(report)),
              env, "playbooks/check_expiry.yml")
    r = job.run()
    planted = _planted(lab, value, **{"approle secret id": secret_id})
    assert r.status == "failed" and r.rc == 2, job.diagnosis(planted)
    rows = json.loads(report.read_text())
    assert [(row["credential"], row["status"]) for row in rows] == [(name, "overdue")]
    assert job.leaks(planted) == []


def test_discover_consumers(rotation_lab, ee, jobs):
    """Run by its collection name (credops.rotation.discover_consumers), from the installed copy."""
    lab, host = rotation_lab, rotation_lab.hosts[0]
    name = "awx-discover"
    _old_id, old_secret, inventory = _api_key(lab, name, host)
    report = jobs / name / "out" / "drift.json"
    job = Job(jobs, lab, ee, name, inventory,
              awx_extravars(106, "credops discover consumers", discover_consumers_report_path=str(report),
                            discover_consumers_fail_on_drift=False),
              {}, "credops.rotation.discover_consumers")
    r = job.run()
    planted = _planted(lab, old_secret)
    assert r.status == "successful" and r.rc == 0, job.diagnosis(planted)
    drift = json.loads(report.read_text())
    # the listed consumer was found where the map says, and the host was reached over SSH with
    # the Machine credential's key (runner's ssh-agent): nothing missing, nothing left unscanned
    assert drift["missing"] == [] and drift["not_scanned"] == []
    assert any(e["event"] == "runner_on_ok" and e["event_data"].get("host") == host.name for e in job.events())
    assert job.leaks(planted) == []
