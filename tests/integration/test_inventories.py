"""inventories/example is production-shaped and passes the collection's own preflight.

It parses (ansible-inventory), the check_expiry playbook's preflight accepts it, and the
strict validation the rotation playbooks run (credops.rotation.validate_credentials, admin
secrets required) finds no problem and no warning once the secrets are in the environment.
It covers every issuer, store and consumer kind, and holds no secret: each secret-bearing
field is a lookup of an environment variable.

inventories/demo (the lab's inventory) is tested against a running lab in
test_lab_demo_inventory.py.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.lab.ansible_runner import ansible_env, run_playbook

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example"
# planted as the admin secrets: never to be printed
SECRETS = {"PROVIDER_ADMIN_TOKEN": "planted-provider-token-5f0c1e",
           "ORDERS_DB_ADMIN_PASSWORD": "planted-db-password-8a61d2",
           "SENDER_ADMIN_TOKEN": "planted-sender-token-c93b07"}
# the secret-bearing fields of the issuer, store and sender blocks (no_log in the modules)
SECRET_FIELDS = ("token", "password", "value", "admin_password", "secret_key", "session_token",
                 "approle_secret_id")
ENV_LOOKUP = re.compile(r"^\{\{ lookup\('ansible\.builtin\.env', '[A-Z][A-Z0-9_]*'\) \}\}$")


def _credentials():
    return yaml.safe_load((EXAMPLE / "group_vars" / "all" / "credentials.yml").read_text())["rotation_credentials"]


def _walk(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, "%s.%s" % (path, key) if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, "%s[%d]" % (path, index))
    else:
        yield path, value


def test_gitignore_keeps_inventories():
    patterns = [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()]
    assert not [p for p in patterns if p.lstrip("/").startswith("inventor")], patterns


def test_example_covers_every_kind():
    creds = _credentials()
    issuers = {r["issuer"]["kind"] for r in creds.values()}
    stores = {r["store"]["kind"] for r in creds.values()}
    consumers = [c for r in creds.values() for c in r["consumers"]]
    assert issuers == {"rest", "aws_iam", "postgres", "vault_pki", "generated"}
    assert stores == {"vault_kv2", "aws_secretsmanager"}
    assert {c["kind"] for c in consumers} == {"systemd", "kubernetes", "batch"}
    assert any(c["kind"] == "systemd" and "cert_file" in c and "key_file" in c for c in consumers)
    assert any(c["kind"] == "kubernetes" and c.get("external_secret") for c in consumers)
    assert any(c["kind"] == "kubernetes" and c.get("secret") and c.get("deployments") for c in consumers)
    assert any(r["type"] == "webhook_secret" and "sender" in r for r in creds.values())


def test_example_has_no_literal_secret():
    found = []
    for path, value in _walk(_credentials()):
        # the issuer, store and sender blocks (and their auth); a consumer's secret_key is a key name
        if path.rsplit(".", 1)[-1] not in SECRET_FIELDS or ".consumers[" in path:
            continue
        if not (isinstance(value, str) and ENV_LOOKUP.match(value)):
            found.append(path)
    assert not found, "secret-bearing fields that are not an env lookup: %s" % found


def test_example_parses():
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(EXAMPLE), "--list"],
                          capture_output=True, text=True, env=ansible_env(), cwd=str(ROOT), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "[WARNING]" not in proc.stderr, proc.stderr
    listed = json.loads(proc.stdout)
    groups = {"web", "orders_api", "webhook_receivers", "tls_edge", "batch", "clusters"}
    assert set(listed["all"]["children"]) >= groups
    assert "rotation_credentials" in listed["_meta"]["hostvars"]["localhost"]


def test_example_passes_check_expiry_preflight():
    proc = run_playbook("credops.rotation.check_expiry", inventory=EXAMPLE, tags="preflight", timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "problem(s)" not in proc.stdout


def test_example_passes_strict_validation(tmp_path):
    """What rotate.yml's preflight runs (admin secrets required), plus the warnings."""
    out = tmp_path / "validation.json"
    play = [{
        "name": "Validate the example inventory", "hosts": "localhost", "gather_facts": False,
        "tasks": [{
            "name": "Write the problems and the warnings",
            "ansible.builtin.copy": {
                "dest": str(out), "mode": "0600",
                "content": "{{ {'errors': rotation_credentials | credops.rotation.validate_credentials("
                           "groups, hostvars.keys() | list),"
                           " 'warnings': rotation_credentials | credops.rotation.credential_warnings("
                           "groups, hostvars.keys() | list),"
                           " 'hosts': rotation_credentials | credops.rotation.rotation_plan("
                           "rotation_credentials.keys() | list, groups) | list} | to_json }}"},
        }],
    }]
    playbook = tmp_path / "validate.yml"
    playbook.write_text(json.dumps(play))
    proc = run_playbook(playbook, inventory=EXAMPLE, env=SECRETS, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["errors"] == []
    assert result["warnings"] == []
    # every consumer host of the map is a host of the inventory
    listed = set()
    for group in ("web", "orders_api", "webhook_receivers", "tls_edge", "batch", "clusters"):
        listed.update(yaml.safe_load((EXAMPLE / "hosts.yml").read_text())["all"]["children"][group]["hosts"])
    assert set(result["hosts"]) == listed
    for value in SECRETS.values():
        assert value not in proc.stdout + proc.stderr + out.read_text()


@pytest.mark.parametrize("missing, field", [
    ("PROVIDER_ADMIN_TOKEN", "payment-gateway-api.issuer.auth.token"),
    ("SENDER_ADMIN_TOKEN", "orders-webhook.sender.auth.token"),
])
def test_example_names_a_missing_secret(tmp_path, missing, field):
    """Without an issuer's admin token in the environment, preflight names the empty field.
    (The PostgreSQL admin password is not required there: libpq may find it in PGPASSWORD or
    ~/.pgpass.)"""
    out = tmp_path / "errors.json"
    play = [{"name": "Validate", "hosts": "localhost", "gather_facts": False, "tasks": [{
        "name": "Write the problems", "ansible.builtin.copy": {
            "dest": str(out), "mode": "0600",
            "content": "{{ rotation_credentials | credops.rotation.validate_credentials(groups) | to_json }}"}}]}]
    playbook = tmp_path / "validate.yml"
    playbook.write_text(json.dumps(play))
    env = dict(SECRETS, **{missing: ""})
    proc = run_playbook(playbook, inventory=EXAMPLE, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    errors = json.loads(out.read_text())
    assert len(errors) == 1 and errors[0].startswith(field + ": missing or empty"), errors
