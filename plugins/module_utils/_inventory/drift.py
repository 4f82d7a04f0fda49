# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drift: what discover_consumers found on the hosts and clusters against what the map lists.

Each consumer kind discovery scans compares its own entries (``Consumer.listed``, ``.drift``)
and reads its own scan's output (``_consumers/<kind>.py``); the functions the filters call by
name are re-exported here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.credops.rotation.plugins.module_utils._consumers import kubernetes_kind as _kubernetes_kind
from ansible_collections.credops.rotation.plugins.module_utils._consumers import systemd as _systemd
from ansible_collections.credops.rotation.plugins.module_utils._consumers.registry import CONSUMERS, consumer_class
from ansible_collections.credops.rotation.plugins.module_utils._consumers._base import ENV_VAR
from ansible_collections.credops.rotation.plugins.module_utils._inventory.model import Inventory, is_str

# What the scans of the hosts and the clusters read, the kinds' own; named here for the filters.
kubernetes_targets = _kubernetes_kind.kubernetes_targets
systemd_references = _systemd.systemd_references
unit_environment_files = _systemd.unit_environment_files
unit_name = _systemd.unit_name


def env_var_names(credentials):
    """Every env_var the map names (any consumer that has one), sorted."""
    names = set()
    for record in (credentials or {}).values():
        for consumer in (record or {}).get("consumers") or []:
            if isinstance(consumer, dict) and is_str(consumer.get("env_var")) and ENV_VAR.match(consumer["env_var"]):
                names.add(consumer["env_var"])
    return sorted(names)


def listed_consumers(credentials, groups=None, hosts=None):
    """The map's consumers flattened as discovery compares them, by kind (the kinds discovery
    scans): per host for an env-file consumer, per Deployment for a cluster one."""
    inventory = Inventory(groups, hosts)
    listed = dict((kind, []) for kind, cls in CONSUMERS.items() if cls.SCANNED)
    for name in sorted(credentials or {}):
        record = credentials[name] or {}
        for consumer in record.get("consumers") or []:
            if not isinstance(consumer, dict):
                continue
            cls = consumer_class(consumer.get("kind"))
            if cls is not None and cls.SCANNED:
                listed[cls.kind].extend(cls.listed(name, consumer, inventory))
    return listed


def consumer_drift(credentials, groups=None, systemd_found=None, kubernetes_found=None, hosts=None):
    """Compare what was found on the hosts/clusters with what the map lists.

    ``systemd_found``: host -> list of ``{env_var, file, units}`` (``systemd_references``), only
    for hosts that were actually scanned; ``kubernetes_found``: cluster -> list of
    ``{namespace, deployment, secret, via}`` (the k8s_discover module), only scanned clusters.
    (These two are the consumer_drift filter's options; ``drift_by_kind`` takes any kind's.)

    Returns ``{"unlisted": [...], "missing": [...], "mismatched": [...], "not_scanned": [...]}``:
    unlisted = found but not in the map (would break on the next rotation); missing = in the
    map but not found (stale entry, or the file/Deployment is gone); mismatched = found where
    listed, but the listed service does not load that file; not_scanned = listed hosts and
    clusters that were not reached.
    """
    # the filter's options, by the kind whose scan they are
    found = {"systemd": systemd_found, "kubernetes": kubernetes_found}
    return drift_by_kind(credentials, found, groups, hosts)


def drift_by_kind(credentials, found, groups=None, hosts=None):
    """``consumer_drift`` with what the scans found by kind (``found``: kind -> what its scan
    found, by host or cluster); each kind compares its own entries (``Consumer.drift``)."""
    listed = listed_consumers(credentials, groups, hosts)
    by_var = {}
    for name, record in sorted((credentials or {}).items()):
        for consumer in (record or {}).get("consumers") or []:
            if isinstance(consumer, dict) and consumer.get("env_var"):
                creds = by_var.setdefault(consumer["env_var"], [])
                if name not in creds:
                    creds.append(name)
    drift = {"unlisted": [], "missing": [], "mismatched": [], "not_scanned": []}
    not_scanned = set()
    for kind, items in listed.items():
        CONSUMERS[kind].drift(items, (found or {}).get(kind) or {}, by_var, drift, not_scanned)
    drift["not_scanned"] = [{"kind": kind, "host": host} for kind, host in sorted(not_scanned)]
    return drift
