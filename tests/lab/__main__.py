"""The lab's command line.

    python -m tests.lab demo     start the lab, run a real standard rotation, show what happened, tear down
    python -m tests.lab demo-more  the same for a TLS certificate, a database password and an AWS key
    python -m tests.lab down     undo the hosts, links and mounts of every lab whose owner died
    python -m tests.lab up --dir DIR [--hosts N] [--k8s]   the lab as a daemon, for molecule (tests/lab/daemon.py)
    python -m tests.lab down --dir DIR                      stop it (or clean up after it)
    python -m tests.lab seed --dir DIR --inventory FILE     seed an API key and its consumers in it
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB_DIR = ROOT / ".lab"


def _fp(value):
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def _health(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError as exc:
        return None, {"error": str(exc)}


def step(text):
    print("\n\033[1m== %s\033[0m" % text, flush=True)


def demo(args):
    from tests.lab import scenarios
    from tests.lab.ansible_runner import ansible_env
    from tests.lab.lab import Lab

    workdir = LAB_DIR / "demo"
    shutil.rmtree(workdir, ignore_errors=True)
    step("Starting the lab: OpenBao, moto, demo key provider, %d systemd hosts, Kubernetes API emulator" % args.hosts)
    t0 = time.monotonic()
    with Lab(workdir, hosts=args.hosts, k8s=True) as lab:
        print("lab up in %.1fs: OpenBao %s, provider %s, hosts %s" % (
            time.monotonic() - t0, lab.openbao.addr, lab.provider.url,
            ", ".join("%s=%s" % (h.name, h.address) for h in lab.hosts)))
        name = "payment-gateway-api"
        old_id, old_secret = scenarios.seed_api_key(lab, name, k8s=True)
        record = scenarios.api_key_record(lab, name, k8s=True, batch_group="batch")
        inventory = lab.write_inventory(
            credentials={name: record},
            groups={"web": [h.name for h in lab.hosts], "batch": [lab.hosts[-1].name]})
        step("Before: key %s (fingerprint %s) is live on every consumer" % (old_id, _fp(old_secret)))
        for h in lab.hosts:
            print("  %-6s %s -> %s" % (h.name, lab.consumer_url(h), _health(lab.consumer_url(h))))

        step("ansible-playbook credops.rotation.rotate -i %s -e force=true" % inventory.relative_to(ROOT))
        env = ansible_env(lab.env())
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/rotate.yml",
               "-i", str(inventory), "-e", "force=true"]
        started = time.monotonic()
        rc = subprocess.call(cmd, cwd=str(ROOT), env=env)
        elapsed = time.monotonic() - started
        step("After (%.1fs, exit code %d)" % (elapsed, rc))
        data, meta = scenarios.kv_read(lab, name)
        new_id = data.get("key_id")
        print("  store: key_id %s -> %s, rotation_phase=%s, last_rotated=%s, previous kept: %s" % (
            old_id, new_id, meta["custom_metadata"].get("rotation_phase"),
            meta["custom_metadata"].get("last_rotated"), "previous_api_key" in data))
        print("  provider: old key %s answers %s; new key %s answers %s" % (
            old_id, lab.provider.test_key(old_secret), new_id, lab.provider.test_key(data["api_key"])))
        for h in lab.hosts:
            print("  %-6s %s -> %s" % (h.name, lab.consumer_url(h), _health(lab.consumer_url(h))))
        k8s_health = _health(record["consumers"][1]["verify"]["url"])
        print("  kubernetes payments/mobile-backend -> %s" % (k8s_health,))
        rejected = [r for r in lab.provider.requests() if r["path"] == "/v1/test" and r["status"] == 401
                    and r["time"] >= "0"]
        print("  provider requests rejected during the run: %d (the old key's proof-of-death probe: %d)" % (
            len(rejected), sum(1 for r in rejected if r["key_id"] == old_id)))
        step("Audit trail (%s)" % (workdir / "rotation-audit.jsonl").relative_to(ROOT))
        for entry in lab.audit_entries():
            print("  %s %-20s %-10s %s %s" % (entry["time"][11:23], entry["credential"], entry["event"],
                                              entry.get("consumer", ""), entry.get("key_id", "")))
        secrets_seen = [s for s in (old_secret, data["api_key"])
                        if s in (workdir / "rotation-audit.jsonl").read_text()]
        print("  secret values in the audit trail: %d" % len(secrets_seen))
    step("Lab torn down")
    return 0 if rc == 0 and not secrets_seen else 1


def demo_more(args):
    from tests.lab import demo_more as more_demo
    return more_demo.main(args)


def down(args):
    from tests.lab import hosts
    if args.dir:
        from tests.lab import daemon
        return daemon.down_cmd(args)
    warnings = hosts.cleanup_crashed()
    for w in warnings:
        print(w, file=sys.stderr)
    return 1 if warnings else 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="start the lab and rotate a credential end to end")
    d.add_argument("--hosts", type=int, default=3)
    dm = sub.add_parser("demo-more", help="start the lab and rotate a certificate, a database password "
                                          "and an AWS access key end to end")
    dm.add_argument("--hosts", type=int, default=2)
    from tests.lab import daemon
    daemon.add_down_options(sub.add_parser("down", help="tear down what a crashed lab left behind, "
                                                        "or the lab of `up --dir DIR`"))
    daemon.add_parsers(sub)
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    return {"demo": demo, "down": down, "demo-more": demo_more,
            "up": daemon.up_cmd, "seed": daemon.seed_cmd}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
