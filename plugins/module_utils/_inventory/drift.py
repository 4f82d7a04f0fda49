# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drift: what discover_consumers found on the hosts and clusters against what the map lists."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.credops.rotation.plugins.module_utils._inventory.model import ENV_VAR, Inventory, is_str


def env_var_names(credentials):
    """Every env_var the map names (systemd and batch consumers), sorted."""
    names = set()
    for record in (credentials or {}).values():
        for consumer in (record or {}).get("consumers") or []:
            if isinstance(consumer, dict) and is_str(consumer.get("env_var")) and ENV_VAR.match(consumer["env_var"]):
                names.add(consumer["env_var"])
    return sorted(names)


def unit_name(unit_path):
    """The unit a unit file or drop-in belongs to: /etc/systemd/system/x.service.d/a.conf -> x.service."""
    parts = unit_path.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2].endswith(".d") and parts[-1].endswith(".conf"):
        return parts[-2][:-2]
    return parts[-1]


def _grep_lines(text):
    """(file, match) pairs from ``grep -H -o`` output (file:match per line)."""
    pairs = []
    for line in (text or "").splitlines():
        if ":" not in line:
            continue
        path, _sep, match = line.partition(":")
        pairs.append((path, match.strip()))
    return pairs


def _environment_file_targets(match):
    """The paths of one ``EnvironmentFile=`` line (``-`` prefix and quotes dropped)."""
    value = match.split("=", 1)[1] if "=" in match else ""
    paths = []
    for part in value.split():
        path = part.strip("\"'").lstrip("-")
        if path.startswith("/"):
            paths.append(path)
    return paths


def unit_environment_files(unit_env_files):
    """The environment files the units load (from ``grep -H -o 'EnvironmentFile=.*'`` output),
    without those named with unit specifiers (``%i``), which only systemd can expand."""
    paths = []
    for _unit_file, match in _grep_lines(unit_env_files):
        for path in _environment_file_targets(match):
            if "%" not in path and path not in paths:
                paths.append(path)
    return sorted(paths)


def systemd_references(env_matches, unit_env_files, unit_env_matches=""):
    """What a systemd host's files say about the credential variables, as found by grep.

    ``env_matches``: ``grep -H -o -P`` output of variable NAMES set in environment files
    (``FILE:NAME`` per line; the patterns stop before ``=`` so no value is ever printed);
    ``unit_env_files``: ``FILE:EnvironmentFile=-/path`` lines from the unit files;
    ``unit_env_matches``: ``UNITFILE:NAME`` lines for units that set a variable with
    ``Environment=``. Returns a sorted list of dicts ``{env_var, file, units}``.
    """
    loaders = {}
    for unit_file, match in _grep_lines(unit_env_files):
        for path in _environment_file_targets(match):
            loaders.setdefault(path, set()).add(unit_name(unit_file))
    found = {}
    for path, name in _grep_lines(env_matches):
        if ENV_VAR.match(name):
            found.setdefault((name, path), set()).update(loaders.get(path, ()))
    for unit_file, name in _grep_lines(unit_env_matches):
        if ENV_VAR.match(name):
            found.setdefault((name, unit_file), set()).add(unit_name(unit_file))
    return [{"env_var": name, "file": path, "units": sorted(units)}
            for (name, path), units in sorted(found.items())]


def listed_consumers(credentials, groups=None, hosts=None):
    """The map's consumers flattened per host (systemd) and per cluster (kubernetes)."""
    inventory = Inventory(groups, hosts)
    systemd, kube = [], []
    for name in sorted(credentials or {}):
        record = credentials[name] or {}
        for consumer in record.get("consumers") or []:
            if not isinstance(consumer, dict):
                continue
            if consumer.get("kind") == "systemd":
                for host in inventory.expand(consumer.get("hosts")):
                    systemd.append({"credential": name, "consumer": consumer.get("name"), "host": host,
                                    "env_var": consumer.get("env_var"), "env_file": consumer.get("env_file"),
                                    "service": consumer.get("service")})
            elif consumer.get("kind") == "kubernetes":
                secrets = [s for s in (consumer.get("secret"), consumer.get("external_secret")) if s]
                for dep in consumer.get("deployments") or []:
                    kube.append({"credential": name, "consumer": consumer.get("name"),
                                 "cluster": consumer.get("cluster"), "namespace": consumer.get("namespace"),
                                 "deployment": dep, "secrets": secrets})
    return {"systemd": systemd, "kubernetes": kube}


def kubernetes_targets(credentials):
    """cluster -> {namespace: [secret names]} the map knows, for the discovery module."""
    targets = {}
    for record in (credentials or {}).values():
        for consumer in (record or {}).get("consumers") or []:
            if isinstance(consumer, dict) and consumer.get("kind") == "kubernetes" and consumer.get("cluster"):
                namespaces = targets.setdefault(consumer["cluster"], {})
                secrets = namespaces.setdefault(consumer.get("namespace"), [])
                for secret in (consumer.get("secret"), consumer.get("external_secret")):
                    if secret and secret not in secrets:
                        secrets.append(secret)
    return targets


def consumer_drift(credentials, groups=None, systemd_found=None, kubernetes_found=None, hosts=None):
    """Compare what was found on the hosts/clusters with what the map lists.

    ``systemd_found``: host -> list of ``{env_var, file, units}`` (``systemd_references``), only
    for hosts that were actually scanned; ``kubernetes_found``: cluster -> list of
    ``{namespace, deployment, secret, via}`` (the k8s_discover module), only scanned clusters.

    Returns ``{"unlisted": [...], "missing": [...], "mismatched": [...], "not_scanned": [...]}``:
    unlisted = found but not in the map (would break on the next rotation); missing = in the
    map but not found (stale entry, or the file/Deployment is gone); mismatched = found where
    listed, but the listed service does not load that file; not_scanned = listed hosts and
    clusters that were not reached.
    """
    systemd_found = systemd_found or {}
    kubernetes_found = kubernetes_found or {}
    listed = listed_consumers(credentials, groups, hosts)
    by_var = {}
    for name, record in sorted((credentials or {}).items()):
        for consumer in (record or {}).get("consumers") or []:
            if isinstance(consumer, dict) and consumer.get("env_var"):
                creds = by_var.setdefault(consumer["env_var"], [])
                if name not in creds:
                    creds.append(name)
    drift = {"unlisted": [], "missing": [], "mismatched": [], "not_scanned": []}

    listed_keys = dict(((c["host"], c["env_var"], c["env_file"]), c) for c in listed["systemd"])
    for host in sorted(systemd_found):
        for ref in systemd_found[host] or []:
            key = (host, ref.get("env_var"), ref.get("file"))
            if key not in listed_keys:
                drift["unlisted"].append({
                    "kind": "systemd", "host": host, "env_var": ref.get("env_var"), "file": ref.get("file"),
                    "units": ref.get("units") or [], "credentials": by_var.get(ref.get("env_var"), []),
                    "message": "host %s: %s sets %s (units: %s) but no consumer of %s lists it" % (
                        host, ref.get("file"), ref.get("env_var"),
                        ", ".join(ref.get("units") or []) or "none found",
                        " or ".join(by_var.get(ref.get("env_var"), [])) or "any credential")})
    not_scanned = set()
    for item in listed["systemd"]:
        host = item["host"]
        if host not in systemd_found:
            not_scanned.add(("systemd", host))
            continue
        refs = [r for r in systemd_found[host] or []
                if r.get("env_var") == item["env_var"] and r.get("file") == item["env_file"]]
        base = {"kind": "systemd", "credential": item["credential"], "consumer": item["consumer"], "host": host,
                "env_var": item["env_var"], "file": item["env_file"], "service": item["service"]}
        if not refs:
            base["message"] = "%s.%s on %s: %s does not set %s (file gone, or the consumer moved)" % (
                item["credential"], item["consumer"], host, item["env_file"], item["env_var"])
            drift["missing"].append(base)
        elif item["service"] and item["service"] not in (refs[0].get("units") or []):
            base["units"] = refs[0].get("units") or []
            base["message"] = "%s.%s on %s: service %s does not load %s (EnvironmentFile= of: %s)" % (
                item["credential"], item["consumer"], host, item["service"], item["env_file"],
                ", ".join(base["units"]) or "no unit")
            drift["mismatched"].append(base)

    listed_deps = {}
    for item in listed["kubernetes"]:
        listed_deps.setdefault((item["cluster"], item["namespace"], item["deployment"]), []).append(item)
    secret_owner = {}
    for item in listed["kubernetes"]:
        for secret in item["secrets"]:
            owners = secret_owner.setdefault((item["cluster"], item["namespace"], secret), [])
            if item["credential"] not in owners:
                owners.append(item["credential"])
    for cluster in sorted(kubernetes_found):
        for ref in kubernetes_found[cluster] or []:
            key = (cluster, ref.get("namespace"), ref.get("deployment"))
            owners = secret_owner.get((cluster, ref.get("namespace"), ref.get("secret")), [])
            known = [i for i in listed_deps.get(key, []) if ref.get("secret") in i["secrets"]]
            if not known:
                drift["unlisted"].append({
                    "kind": "kubernetes", "cluster": cluster, "namespace": ref.get("namespace"),
                    "deployment": ref.get("deployment"), "secret": ref.get("secret"), "via": ref.get("via"),
                    "credentials": owners,
                    "message": "deployment %s/%s on %s uses Secret %s (%s) but no consumer of %s lists it" % (
                        ref.get("namespace"), ref.get("deployment"), cluster, ref.get("secret"), ref.get("via"),
                        " or ".join(owners) or "any credential")})
    for item in listed["kubernetes"]:
        cluster = item["cluster"]
        if cluster not in kubernetes_found:
            not_scanned.add(("kubernetes", cluster))
            continue
        refs = [r for r in kubernetes_found[cluster] or []
                if r.get("namespace") == item["namespace"] and r.get("deployment") == item["deployment"]
                and r.get("secret") in item["secrets"]]
        if not refs:
            drift["missing"].append({
                "kind": "kubernetes", "credential": item["credential"], "consumer": item["consumer"],
                "cluster": cluster, "namespace": item["namespace"], "deployment": item["deployment"],
                "message": "%s.%s: deployment %s/%s on %s does not use Secret %s (gone, or renamed)" % (
                    item["credential"], item["consumer"], item["namespace"], item["deployment"], cluster,
                    " or ".join(item["secrets"]))})
    drift["not_scanned"] = [{"kind": kind, "host": host} for kind, host in sorted(not_scanned)]
    return drift
