"""Benchmark: a standard rotation of many credentials across many systemd hosts of the lab.

Every credential is held by every host's one service ("fleet-app", one environment variable per
credential, the lab's demo consumer), as a fleet of identical application servers holds its keys.
For each size (credentials x hosts) one rotate.yml run rotates all of them, with the collection as
ansible-galaxy installs it and an empty ansible.cfg (--checkout: this checkout and its ansible.cfg).
Prints the wall time of each run, the restarts per host (systemd's journal: one per service,
whatever the number of credentials), the consumer requests the provider rejected (target 0), how
the time grows with credentials per host and with hosts, and the lab's memory.

    .venv/bin/python benchmarks/fleet.py [--credentials 10,50,100] [--hosts 2,5,10] [--serial 1]

Hosts are started once (the largest count); a size uses the first N of them. Target: 100
credentials x 10 hosts < 3 min, growing sub-linearly in credentials per host.
"""
import argparse
import tempfile
import time
from pathlib import Path

import hvac
from _common import add_collection_argument, iso_now, use_installed_collection

from tests.lab import scenarios
from tests.lab.ansible_runner import run_playbook
from tests.lab.lab import Lab

SERVICE = "fleet-app"
ENV_FILE = "/etc/fleet/environment"
PORT = 8091


def _starts(host):
    out = host.run("journalctl", "--no-pager", "-o", "cat", "-u", SERVICE + ".service", check=False).stdout
    return sum(1 for line in out.splitlines() if line.startswith("Started ") and "(%s)" % SERVICE in line)


def _memory_mib():
    fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    total, available = (int(fields[name].split()[0]) for name in ("MemTotal", "MemAvailable"))
    return (total - available) // 1024


def _record(lab, name, var, group):
    record = scenarios.api_key_record(lab, name, group=group)
    record["consumers"] = [{
        "name": SERVICE, "kind": "systemd", "hosts": group, "env_file": ENV_FILE, "env_var": var,
        "service": SERVICE + ".service",
        "verify": {"url": "http://{{ ansible_host }}:%d/health/env/%s" % (PORT, var), "status": 200}}]
    return record


def one(lab, run, n_credentials, n_hosts, serial):
    hosts = lab.hosts[:n_hosts]
    client = hvac.Client(url=lab.openbao.addr, token=lab.openbao.token)
    names, secrets = [], []
    for i in range(n_credentials):
        name = "fleet-%d-%03d" % (run, i)
        key_id, secret = lab.provider.create_key("initial-" + name)
        client.secrets.kv.v2.create_or_update_secret(path="api-credentials/" + name, mount_point=scenarios.KV_MOUNT,
                                                     secret={"api_key": secret, "key_id": key_id})
        names.append(name)
        secrets.append(secret)
    env_vars = ["KEY_%03d" % i for i in range(n_credentials)]
    for host in hosts:
        lab.install_consumer(host, secrets[0], name=SERVICE, env_file=ENV_FILE, env_var=env_vars[0], port=PORT,
                             extra_env=["%s=%s" % (v, s) for v, s in zip(env_vars[1:], secrets[1:])])
    group = "fleet"
    credentials = {name: _record(lab, name, var, group) for name, var in zip(names, env_vars)}
    inventory = lab.write_inventory(path=lab.workdir / ("inv-fleet-%d.yml" % run), credentials=credentials,
                                    groups={group: [h.name for h in hosts]})
    starts = {h.name: _starts(h) for h in hosts}
    since = iso_now()
    t0 = time.monotonic()
    proc = run_playbook("playbooks/rotate.yml", inventory=inventory, env=lab.env(),
                        extra_vars={"credentials": names, "rotation_serial": serial}, timeout=1800)
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-2000:])
        raise SystemExit("fleet run %d x %d failed (rc %d)" % (n_credentials, n_hosts, proc.returncode))
    restarts = sorted(set(_starts(h) - starts[h.name] for h in hosts))
    rejected = sum(1 for r in lab.provider.requests() if r["path"] == "/v1/test" and r["status"] == 401
                   and r["source"] != "127.0.0.1" and r["time"] >= since)
    for host in hosts:
        host.systemctl("stop", SERVICE + ".service", check=False)
    return elapsed, restarts, rejected


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--credentials", default="10,50,100", help="comma-separated credential counts")
    ap.add_argument("--hosts", default="2,5,10", help="comma-separated host counts (at most 10 here)")
    ap.add_argument("--serial", default="1", help="rotation_serial: hosts per rolling batch (default 1)")
    add_collection_argument(ap)
    args = ap.parse_args()
    counts = [int(c) for c in args.credentials.split(",")]
    host_counts = [int(h) for h in args.hosts.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="credops-fleet-"))
    if not args.checkout:
        use_installed_collection(workdir / "installed")
    base = _memory_mib()
    rows = []
    with Lab(workdir / "lab", hosts=max(host_counts)) as lab:
        print("lab up: %d systemd hosts; memory in use %d MiB (before the lab: %d MiB)"
              % (len(lab.hosts), _memory_mib(), base))
        run = 0
        for n_hosts in host_counts:
            for n in counts:
                run += 1
                elapsed, restarts, rejected = one(lab, run, n, n_hosts, args.serial)
                rows.append((n, n_hosts, elapsed))
                print("%4d credentials x %2d hosts: %6.1f s  (restarts per host %s, rejected by the provider %d, "
                      "memory in use %d MiB)" % (n, n_hosts, elapsed, restarts, rejected, _memory_mib()), flush=True)
    print("\nwall time (s), credentials across, hosts down:")
    print("hosts " + "".join("%8d" % n for n in counts))
    for n_hosts in host_counts:
        print("%5d " % n_hosts + "".join("%8.1f" % t for n, h, t in rows if h == n_hosts))
    for n_hosts in host_counts:
        times = [t for n, h, t in rows if h == n_hosts]
        if len(times) > 1:
            print("%d hosts: %dx the credentials took %.1fx the time" % (
                n_hosts, counts[-1] // counts[0], times[-1] / times[0]))


if __name__ == "__main__":
    main()
