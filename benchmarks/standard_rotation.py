"""Benchmark: one standard rotation with 3 systemd consumers, against the lab.

Prints the wall time of `credops.rotation.rotate`, the count of requests the provider
rejected from consumers while it ran (target 0), and the same for a plain shell script doing
the same steps by hand (curl, the bao CLI, ssh + systemctl), and the ratio.

    .venv/bin/python benchmarks/standard_rotation.py [--runs 3]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, Poller, add_collection_argument, iso_now, spread, use_installed_collection

from tests.lab import scenarios
from tests.lab.ansible_runner import run_playbook
from tests.lab.lab import Lab


def rejected_from_consumers(lab, since):
    return sum(1 for r in lab.provider.requests() if r["path"] == "/v1/test" and r["status"] == 401
               and r["source"] != "127.0.0.1" and r["time"] >= since)


def one(lab, name, by_hand):
    old_id, _secret = scenarios.seed_api_key(lab, name)
    record = scenarios.api_key_record(lab, name)
    inventory = lab.write_inventory(path=lab.workdir / ("inv-%s.yml" % name), credentials={name: record},
                                    groups={"web": [h.name for h in lab.hosts]})
    pollers = [Poller(lab.consumer_url(h), interval=0.1) for h in lab.hosts]
    for p in pollers:
        p.start()
    since = iso_now()
    t0 = time.monotonic()
    if by_hand:
        env = dict(os.environ, **lab.env())
        env.update(PROVIDER=lab.provider.url, KV_PATH="api-credentials/" + name, OLD_ID=old_id,
                   SSH_KEY=str(lab.systemd.ssh_key), HOSTS=" ".join(h.address for h in lab.hosts),
                   BAO=str(Path(sys.executable).parent / "bao"))
        proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "manual_rotation.sh")], env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        rc = proc.returncode
    else:
        proc = run_playbook("playbooks/rotate.yml", inventory=inventory, env=lab.env(),
                            extra_vars={"credentials": [name]})
        rc = proc.returncode
    elapsed = time.monotonic() - t0
    for p in pollers:
        p.stop()
    if rc != 0:
        print(proc.stdout[-3000:], proc.stderr[-2000:])
        raise SystemExit("%s run failed (rc %d)" % ("manual" if by_hand else "collection", rc))
    failed_polls = sum(1 for p in pollers for _when, ok in p.samples if not ok)
    return elapsed, rejected_from_consumers(lab, since), failed_polls


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    add_collection_argument(ap)
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="credops-bench-"))
    if not args.checkout:
        use_installed_collection(workdir / "installed")
    with Lab(workdir / "lab", hosts=3) as lab:
        results = {"collection": [], "manual": []}
        for i in range(args.runs):
            for kind in ("collection", "manual"):
                results[kind].append(one(lab, "bench-%s-%d" % (kind, i), kind == "manual"))
        for kind, rows in results.items():
            print("%-10s wall time: %s; rejected by the provider: %s; failed health polls: %s" % (
                kind, spread([r[0] for r in rows]), [r[1] for r in rows], [r[2] for r in rows]))
        import statistics
        ratio = statistics.median(r[0] for r in results["collection"]) / statistics.median(r[0] for r in results["manual"])
        print("ratio collection/manual (median wall time): %.2f" % ratio)


if __name__ == "__main__":
    main()
