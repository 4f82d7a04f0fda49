"""inventories/demo against a running lab daemon, as its README tells a user to run it:
`python -m tests.lab up --dir DIR`, `python -m tests.lab seed`, then
`ansible-playbook credops.rotation.{check_expiry,rotate} -i inventories/demo` (CREDLAB_DIR=DIR
points the inventory script at the lab), then `python -m tests.lab down --dir DIR`.

The rotation is checked with independent clients (OpenBao's HTTP API through hvac, the
consumers' health endpoints over HTTP), and no secret value may reach the output.

The file name puts it among the lab's own tests, which tests/conftest.py runs first: it boots
systemd hosts of its own, and must do so before the session's shared lab (rotation_lab) holds
the hosts' bridge until the session ends.
"""
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import hvac
import pytest

from tests.lab.ansible_runner import ansible_env
from tests.lab.hosts import live_labs
from tests.lab.openbao import OpenBao
from tests.lab.provider import Provider

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "inventories" / "demo"
LAB_WAIT = float(os.environ.get("CREDLAB_WAIT", "480"))
NEVER_PRINTED = ("sk_live_", OpenBao.token, Provider.admin_token)
NAME = "payment-gateway-api"

pytestmark = [pytest.mark.lab, pytest.mark.hosts, pytest.mark.timeout(LAB_WAIT + 600)]


def _lab(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "tests.lab"] + list(args), cwd=str(ROOT),
                          capture_output=True, text=True, timeout=timeout, check=False)


def _ansible(cmd, lab_dir, timeout=300):
    # Only CREDLAB_DIR: the lab's tokens must come from lab.json through the inventory, not
    # from this process's environment.
    env = ansible_env({"CREDLAB_DIR": str(lab_dir)})
    for var in ("VAULT_ADDR", "VAULT_TOKEN", "BAO_ADDR", "BAO_TOKEN", "PROVIDER_ADMIN_TOKEN"):
        env.pop(var, None)
    tool = Path(sys.executable).parent / cmd[0]
    return subprocess.run([str(tool)] + cmd[1:], cwd=str(ROOT), env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _health(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def _kv(info):
    client = hvac.Client(url=info["openbao"]["addr"], token=info["env"]["VAULT_TOKEN"])
    data = client.secrets.kv.v2.read_secret_version(path="api-credentials/" + NAME, mount_point="secret",
                                                    raise_on_deleted_version=True)["data"]["data"]
    meta = client.secrets.kv.v2.read_secret_metadata(path="api-credentials/" + NAME, mount_point="secret")
    return data, meta["data"]["custom_metadata"] or {}


def _no_secrets(*outputs):
    for out in outputs:
        for value in NEVER_PRINTED:
            assert value not in out


def test_demo_inventory_reads_the_running_lab(tmp_path):
    own = [lab.get("workdir") for lab in live_labs() if lab.get("owner_pid") == os.getpid()]
    assert not own, ("this pytest process already holds a lab (%s): the daemon's lab would wait for it; "
                     "this test must run before rotation_lab (tests/conftest.py)" % own)
    lab_dir = tmp_path / "lab"
    up = _lab("up", "--dir", str(lab_dir), "--hosts", "2", timeout=LAB_WAIT + 300)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        info = json.loads((lab_dir / "lab.json").read_text())
        seed = _lab("seed", "--dir", str(lab_dir), "--inventory", str(tmp_path / "seeded.yml"), timeout=300)
        assert seed.returncode == 0, seed.stdout + seed.stderr
        before, _meta = _kv(info)

        # the inventory: the lab's hosts at their addresses, its services' URLs, no token
        inv = _ansible(["ansible-inventory", "-i", str(DEMO), "--list"], lab_dir)
        assert inv.returncode == 0, inv.stdout + inv.stderr
        assert "[WARNING]" not in inv.stderr, inv.stderr
        listed = json.loads(inv.stdout)
        assert sorted(listed["web"]["hosts"]) == sorted(h["name"] for h in info["hosts"])
        for host in info["hosts"]:
            assert listed["_meta"]["hostvars"][host["name"]]["ansible_host"] == host["address"]
        assert listed["_meta"]["hostvars"]["localhost"]["vault_addr"] == info["openbao"]["addr"]
        assert NAME in listed["_meta"]["hostvars"]["localhost"]["rotation_credentials"]
        _no_secrets(inv.stdout, inv.stderr)

        # preflight: the committed credential is valid against this lab and its store answers
        pre = _ansible(["ansible-playbook", "credops.rotation.check_expiry", "-i", str(DEMO),
                        "--tags", "preflight"], lab_dir)
        assert pre.returncode == 0, pre.stdout[-6000:] + pre.stderr[-3000:]
        assert "problem(s) in rotation_credentials" not in pre.stdout

        # a real rotation, as the README's last step
        rot = _ansible(["ansible-playbook", "credops.rotation.rotate", "-i", str(DEMO), "-e", "force=true"],
                       lab_dir, timeout=600)
        assert rot.returncode == 0, rot.stdout[-8000:] + rot.stderr[-3000:]
        _no_secrets(pre.stdout, pre.stderr, rot.stdout, rot.stderr)
        after, meta = _kv(info)
        assert after["key_id"] != before["key_id"]
        assert after["api_key"] != before["api_key"]
        assert meta.get("rotation_phase") == "finished"
        assert "previous_api_key" not in after      # the old key was revoked and cleared
        for host in info["hosts"]:
            status, body = _health("http://%s:8080/health/payment-integration" % host["address"])
            assert (status, body.get("payment_gateway")) == (200, "connected"), (host, body)
        audit = Path(info["audit_log"]).read_text()
        events = [json.loads(line)["event"] for line in audit.splitlines() if line.strip()]
        assert "verified" in events and "revoked" in events, events
        _no_secrets(audit)
        for value in (before["api_key"], after["api_key"]):
            assert value not in audit and value not in rot.stdout + rot.stderr
    finally:
        down = _lab("down", "--dir", str(lab_dir), timeout=240)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not (lab_dir / "lab.json").exists()
