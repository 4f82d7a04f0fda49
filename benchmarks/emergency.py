"""Benchmark: emergency rotation with N systemd consumers (default 3), over several runs.

Time-to-revoke: from starting `ansible-playbook credops.rotation.emergency` to the provider
recording the revocation (target < 2 s). Outage window: per consumer, first failed to first healthy
health request (target < 10 s); and from the revocation to every consumer healthy again (target with
10 consumers < 3 s). Prints median and spread. The collection is the one ansible-galaxy installs,
with an empty ansible.cfg (--checkout: this checkout and its ansible.cfg).

Each run opens its SSH connections afresh, as an emergency at 3 a.m. does (its own ControlPath
directory; --warm: the runs share one, so later runs find them open). --by-hand runs the same steps
as a shell script (benchmarks/manual_emergency.sh): the floor of the outage window on this machine.

    .venv/bin/python benchmarks/emergency.py [--runs 5] [--hosts 10] [--warm] [--by-hand]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, Poller, add_collection_argument, parse_iso, spread, use_installed_collection

from tests.lab import scenarios
from tests.lab.ansible_runner import run_playbook
from tests.lab.lab import Lab


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--poll-interval", type=float, default=0.1,
                    help="seconds between two health polls of one consumer (each poll also makes the consumer "
                         "call the provider; all of it shares the controller's CPU in the lab)")
    ap.add_argument("--hosts", type=int, default=3, help="systemd consumers (lab hosts, at most 10 here)")
    ap.add_argument("--by-hand", action="store_true",
                    help="the same steps in benchmarks/manual_emergency.sh (curl, the bao CLI, ssh to every host at "
                         "once), for the floor of the outage window on this machine")
    ap.add_argument("--warm", action="store_true",
                    help="the runs share their SSH connections (ControlPersist), instead of each opening its own")
    add_collection_argument(ap)
    args = ap.parse_args()
    to_revoke, outages, all_healthy = [], [], []
    workdir = Path(tempfile.mkdtemp(prefix="credops-bench-"))
    if not args.checkout and not args.by_hand:
        use_installed_collection(workdir / "installed")
    with Lab(workdir / "lab", hosts=args.hosts) as lab:
        for i in range(args.runs):
            name = "bench-emergency-%d" % i
            old_id, _secret = scenarios.seed_api_key(lab, name)
            inventory = lab.write_inventory(path=lab.workdir / ("inv-%s.yml" % name),
                                            credentials={name: scenarios.api_key_record(lab, name)},
                                            groups={"web": [h.name for h in lab.hosts]})
            pollers = [Poller(lab.consumer_url(h), interval=args.poll_interval) for h in lab.hosts]
            for p in pollers:
                p.start()
            time.sleep(0.5)
            env = lab.env()
            if not args.warm:  # no SSH connection left open by an earlier run
                env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = tempfile.mkdtemp(prefix="cp-", dir=str(workdir))
            start = time.time()
            if args.by_hand:
                env = dict(os.environ, **env)
                env.update(PROVIDER=lab.provider.url, KV_PATH="api-credentials/" + name, OLD_ID=old_id,
                           SSH_KEY=str(lab.systemd.ssh_key), HOSTS=" ".join(h.address for h in lab.hosts),
                           BAO=str(Path(sys.executable).parent / "bao"))
                proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "manual_emergency.sh")], env=env,
                                      capture_output=True, text=True, timeout=300, check=False)
            else:
                proc = run_playbook("playbooks/emergency.yml", inventory=inventory, env=env,
                                    extra_vars={"credential": name, "incident": "INC-BENCH-%d" % i})
            time.sleep(0.5)
            for p in pollers:
                p.stop()
            if proc.returncode != 0:
                print(proc.stdout[-3000:])
                raise SystemExit("emergency run failed")
            revoked = next(r for r in lab.provider.requests() if r["method"] == "DELETE" and r["key_id"] == old_id)
            revoked_at = parse_iso(revoked["time"])
            to_revoke.append(revoked_at - start)
            windows = [(o[1] - o[0]) if o and o[1] else None for o in (p.outage(since=start) for p in pollers)]
            outages.append(max((w for w in windows if w is not None), default=0.0))
            # revocation to every consumer healthy: the last consumer's first healthy poll after its outage
            healed = [o[1] for o in (p.outage(since=start) for p in pollers) if o]
            all_healthy.append(None if any(h is None for h in healed) else max(healed, default=revoked_at) - revoked_at)
            print("run %d: time-to-revoke %.2fs, revocation to all %d consumers healthy %s, outage window per "
                  "consumer %s" % (i, to_revoke[-1], len(pollers),
                                   "%.2fs" % all_healthy[-1] if all_healthy[-1] is not None else "never",
                                   ["%.2fs" % w if w is not None else "none/unhealed" for w in windows]))
    print("%s; health polls every %.2fs per consumer; SSH connections %s" % (
        "by hand (benchmarks/manual_emergency.sh)" if args.by_hand else "credops.rotation.emergency",
        args.poll_interval, "shared by the runs" if args.warm else "opened afresh by each run"))
    print("time-to-revoke: %s (target < 2 s)" % spread(to_revoke))
    print("outage window (worst consumer per run): %s (target < 10 s)" % spread(outages))
    print("revocation to all %d consumers healthy: %s (target with 10 consumers < 3 s)" % (args.hosts, spread(all_healthy)))


if __name__ == "__main__":
    main()
