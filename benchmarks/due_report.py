"""How long the due report takes for a large inventory, and how much memory it needs.

Generates N credentials (every type, both risks, overrides, certificates, 1-3 consumers each
over 200 hosts in 20 groups) and times the code the playbooks run, not a copy of it:

  preflight       _inventory.validation.validate   (filter credops.rotation.validate_credentials)
  dependency map  _inventory.depmap.dependency_map (filter credops.rotation.dependency_map)
  due (lookup)    rotation_status.report           (lookup credops.rotation.rotation_status), with an
                  in-memory store standing in for Vault/AWS (the network is not what is measured)
  due (filter)    filter due_report on the inventory's last_rotated

Times are of a plain run; peak memory is tracemalloc's peak of Python allocations during a
second run of each step (tracemalloc slows Python down, so it is kept out of the timing), and
the process's maximum resident set size at the end. Target: the due computation (the lookup
path) under 3 s for 10,000; exit status 1 when it is over.

    .venv/bin/python benchmarks/due_report.py [--count 10000] [--workers 8] [--json] [--no-memory]
"""
import argparse
import datetime
import json
import os
import random
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / ".collections"), str(ROOT)]

from ansible_collections.credops.rotation.plugins.filter import rotation as filters  # noqa: E402
from ansible_collections.credops.rotation.plugins.lookup import rotation_status  # noqa: E402
from ansible_collections.credops.rotation.plugins.module_utils import _policy  # noqa: E402
from ansible_collections.credops.rotation.plugins.module_utils._inventory import depmap, validation  # noqa: E402

NOW = datetime.datetime(2025, 6, 1, tzinfo=datetime.timezone.utc)
TARGET_SECONDS = 3.0
ISSUERS = {
    "api_key": {"kind": "rest", "base_url": "https://api.example.com", "auth": {"type": "bearer", "token": "t"},
                "create": {"path": "/v1/keys", "secret_path": "key", "id_path": "id"},
                "revoke": {"path": "/v1/keys/{id}"},
                "usage": {"path": "/v1/audit?id={id}&since={since}", "events_path": "entries",
                          "time_path": "timestamp"}},
    "oauth_client_secret": {"kind": "generated", "length": 48},
    "service_account_token": {"kind": "aws_iam", "user_name": "svc"},
    "database": {"kind": "postgres", "host": "db", "port": 5432, "db": "app", "admin_user": "admin", "role": "app"},
    "webhook_secret": {"kind": "generated"},
    "certificate": {"kind": "vault_pki", "mount": "pki", "role": "web", "common_name": "svc.example.org", "ttl": "2160h"},
}


def inventory(count, seed=7):
    rng = random.Random(seed)
    groups = {"all": [], "ungrouped": []}
    for g in range(20):
        members = ["host%03d" % (g * 10 + i) for i in range(10)]
        groups["group%02d" % g] = members
        groups["all"].extend(members)
    groups["all"].append("k8s-prod")
    groups["ungrouped"].append("k8s-prod")
    credentials, reads = {}, {}
    types = list(ISSUERS)
    for n in range(count):
        name = "cred-%05d" % n
        ctype = types[n % len(types)]
        record = {"type": ctype, "rotation_contact": "team%d@example.org" % (n % 50),
                  "issuer": dict(ISSUERS[ctype]),
                  "store": {"kind": "vault_kv2", "mount": "secret", "path": "bench/%s" % name, "field": "value"}
                  if n % 4 else {"kind": "aws_secretsmanager", "secret_id": name},
                  "last_rotated": (NOW - datetime.timedelta(days=rng.randint(0, 400))).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "consumers": []}
        if n % 3 == 0:
            record["risk"] = "high"
        if n % 11 == 0:
            record["max_age_days"] = rng.choice([7, 14, 45, 60])
        for c in range(1 + n % 3):
            if c == 2:
                record["consumers"].append({"name": "k8s-%d" % c, "kind": "kubernetes", "cluster": "k8s-prod",
                                            "namespace": "ns%d" % (n % 30), "secret": "s-%05d" % n,
                                            "deployments": ["d-%05d" % n]})
            else:
                record["consumers"].append({"name": "svc-%d" % c, "kind": "systemd",
                                            "hosts": "group%02d" % ((n + c) % 20),
                                            "env_file": "/etc/app%d/environment" % c,
                                            "env_var": "CRED_%05d_%d" % (n, c), "service": "app%d.service" % c,
                                            "verify": {"url": "http://localhost:8080/health", "json": {"status": "ok"}}})
        credentials[name] = record
        age = rng.randint(0, 400)
        read = {"exists": True, "current": "value-%d" % n, "version": 3, "metadata": {},
                "created_time": (NOW - datetime.timedelta(days=age)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        if n % 2:
            read["metadata"]["last_rotated"] = read["created_time"]
        if ctype == "certificate":
            read["metadata"]["not_before"] = read["created_time"]
            read["metadata"]["not_after"] = (NOW + datetime.timedelta(days=90 - age)).strftime("%Y-%m-%dT%H:%M:%SZ")
        reads[name] = read
    return credentials, groups, reads


class MemoryStore(object):
    def __init__(self, read):
        self._read = read

    def read(self):
        return self._read


def measure(label, func, memory=True):
    """Time one run (tracemalloc off: it slows Python down several times), then, separately,
    the peak of Python allocations of a second run under tracemalloc."""
    start = time.perf_counter()
    result = func()
    elapsed = time.perf_counter() - start
    figures = {"step": label, "seconds": round(elapsed, 3), "peak_mib": None}
    if memory:
        del result
        tracemalloc.start()
        result = func()
        figures["peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 1048576.0, 1)
        tracemalloc.stop()
    return result, figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc runs")
    args = parser.parse_args(argv)
    memory = not args.no_memory

    credentials, groups, reads = inventory(args.count)
    hosts = list(groups["all"])

    def get_store(config, name):
        return MemoryStore(reads[name])

    steps = []
    (errors, _warnings), figures = measure("preflight (validate)", lambda: validation.validate(
        credentials, groups, hosts, NOW), memory)
    steps.append(figures)
    assert errors == [], errors[:5]
    _map, figures = measure("dependency map", lambda: depmap.dependency_map(credentials, groups, hosts), memory)
    steps.append(figures)
    rows, figures = measure("due report (lookup path, %d workers)" % args.workers, lambda: rotation_status.report(
        credentials, now=NOW, groups=groups, get_store=get_store, read_endpoints=False, workers=args.workers), memory)
    steps.append(figures)
    lookup_seconds = figures["seconds"]
    rows_filter, figures = measure("due report (filter path)", lambda: filters.due_report(credentials, NOW), memory)
    steps.append(figures)
    assert len(rows) == len(rows_filter) == args.count
    summary = _policy.summary(rows)
    result = {"credentials": args.count, "steps": steps, "summary": summary,
              "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
              "python": sys.version.split()[0], "cpus": os.cpu_count(),
              "target_seconds": TARGET_SECONDS, "within_target": lookup_seconds < TARGET_SECONDS}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("due report benchmark: %d credentials (python %s, %d cpus)" % (
            args.count, result["python"], result["cpus"]))
        for step in steps:
            peak = "   peak %7.1f MiB" % step["peak_mib"] if step["peak_mib"] is not None else ""
            print("  %-40s %7.3f s%s" % (step["step"], step["seconds"], peak))
        print("  statuses: %s" % ", ".join("%s %d" % kv for kv in sorted(summary.items())))
        print("  max RSS: %.1f MiB; due computation %s the %.0f s target" % (
            result["max_rss_mib"], "within" if result["within_target"] else "OVER", TARGET_SECONDS))
    return 0 if result["within_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
