# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory-side filters: validation, normalisation, the dependency map, the due report
and consumer drift.

Each filter is documented in the YAML file of its own name beside this one
(``ansible-doc -t filter credops.rotation.NAME``). The logic lives in module_utils
(``_inventory/*``, ``_policy``) so modules, the lookup and the benchmark share it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.credops.rotation.plugins.module_utils import _audit_sinks, _policy, _time
from ansible_collections.credops.rotation.plugins.module_utils._inventory import (
    depmap as _depmap, drift as _drift, model as _model, normalize as _normalize, validation as _validation,
)
from ansible_collections.credops.rotation.plugins.plugin_utils.record_hosts import record_hosts

display = Display()


def _hosts_arg(hosts):
    if hosts is None:
        return None
    if isinstance(hosts, str):
        return [hosts]
    return list(hosts)


def _now(now):
    if now in (None, ""):
        return _time.now()
    try:
        return _time.parse_time(now)
    except ValueError as exc:
        raise AnsibleFilterError("now: %s" % exc)


_first_line = _model.first_line


def validate_credentials(credentials, groups=None, hosts=None, now=None, warn=True, check_secrets=True,
                         require_contact=True, audit_sinks=None):
    """rotation_credentials | credops.rotation.validate_credentials(groups, hostvars.keys() | list)

    Returns the list of error strings (empty when valid). Unknown fields are shown as warnings.
    ``audit_sinks`` (the run's ``rotation_audit_sinks``) is checked too: a bad sink would
    otherwise fail the first audit entry, after something changed.
    """
    problems = []
    credentials = _model.resolve(credentials, "", problems)
    errors, warnings = _validation.validate(credentials, groups, _hosts_arg(hosts), _now(now),
                                            check_secrets=check_secrets, require_contact=require_contact)
    if problems:
        unresolved = set(path for path, _exc in problems)
        errors = ["%s: cannot be templated (%s). Fix: define the variable or correct the expression." % (
            path, _first_line(exc)) for path, exc in problems] + [
            e for e in errors if e.split(": ", 1)[0] not in unresolved]
    if warn:
        for text in warnings:
            display.warning("rotation_credentials.%s" % text)
    return errors + _audit_sinks.problems(audit_sinks)


def credential_warnings(credentials, groups=None, hosts=None, now=None):
    """The warnings (unknown fields, relaxed policy, plain http) as a list of strings."""
    credentials = _model.resolve(credentials, "", [])
    return _validation.validate(credentials, groups, _hosts_arg(hosts), _now(now))[1]


def _mapping_arg(credentials, filter_name, strict):
    if not isinstance(credentials, dict):
        raise AnsibleFilterError("%s expects the rotation_credentials mapping, got %s"
                                 % (filter_name, type(credentials).__name__))
    problems = []
    plain = _model.resolve(credentials, "", problems)
    if problems and strict:
        raise AnsibleFilterError("%s: %s" % (filter_name, "; ".join(
            "%s cannot be templated (%s)" % (path, _first_line(exc)) for path, exc in problems)))
    return plain


def normalize_credentials(credentials):
    return _normalize.normalize_all(_mapping_arg(credentials, "normalize_credentials", True))


def dependency_map(credentials, groups=None, hosts=None):
    return _depmap.dependency_map(_mapping_arg(credentials, "dependency_map", False), groups, _hosts_arg(hosts))


def due_report(records_with_ages, now=None, groups=None):
    """Rows of the due report, most urgent first.

    ``records_with_ages``: a list of ``{credential, record, last_rotated, source, not_before,
    not_after, error}`` (what the rotation_status lookup gathers), or the rotation_credentials
    mapping itself (ages then from each record's last_rotated).
    """
    now = _now(now)
    if isinstance(records_with_ages, dict):
        entries = [{"credential": name, "record": record,
                    "last_rotated": (record or {}).get("last_rotated"),
                    "source": "inventory" if (record or {}).get("last_rotated") else None}
                   for name, record in records_with_ages.items()]
    elif isinstance(records_with_ages, list):
        entries = records_with_ages
    else:
        raise AnsibleFilterError("due_report expects a list of records with ages or the rotation_credentials "
                                 "mapping, got %s" % type(records_with_ages).__name__)
    if groups is not None:
        inventory = _model.Inventory(groups)
        entries = [dict(e, hosts=record_hosts(e.get("record"), inventory)) for e in entries]
    try:
        return _policy.due_report(entries, now)
    except ValueError as exc:
        raise AnsibleFilterError("due_report: %s (run validate_credentials first)" % exc)


def due_summary(rows):
    """Counts per status: {ok, warning, overdue, unknown}."""
    return _policy.summary(rows or [])


# --- dependency graph layout for the HTML report ----------------------------------------------

_COLUMNS = (("credential", 20), ("consumer", 330), ("host", 640))
_NODE_W = 240
_NODE_H = 30
_GAP = 12


def dependency_graph(dep_map, rows=None, limit=150):
    """Node and edge coordinates of the dependency map drawn in three columns
    (credentials -> consumers -> hosts), for an inline SVG; credentials in the order of the
    report rows (most urgent first), then by name.

    Returns ``{width, height, node_width, node_height, nodes: [{id, label, sub, column, x, y,
    status}], edges: [{x1, y1, x2, y2, status}]}``; a credential's status colours its
    node and edges. At most ``limit`` credentials are drawn (the most urgent); ``omitted``
    says how many were left out.
    """
    status_of = dict((r.get("credential"), r.get("status")) for r in rows or [])
    creds = (dep_map or {}).get("credentials") or {}
    nodes, edges = [], []
    positions = {}
    counters = [0, 0, 0]

    def place(column, key, label, sub, status):
        if key in positions:
            return positions[key]
        x = _COLUMNS[column][1]
        y = 20 + counters[column] * (_NODE_H + _GAP)
        counters[column] += 1
        node = {"id": key, "label": label, "sub": sub, "column": _COLUMNS[column][0], "x": x, "y": y,
                "status": status}
        nodes.append(node)
        positions[key] = node
        return node

    position = dict((r.get("credential"), i) for i, r in enumerate(rows or []))
    order = sorted(creds, key=lambda n: (position.get(n, len(position)), _policy.URGENCY.get(status_of.get(n), 1), n))
    omitted = max(0, len(order) - int(limit)) if limit else 0
    for name in order[:len(order) - omitted]:
        entry = creds[name]
        status = status_of.get(name, "unknown")
        cnode = place(0, "c:" + name, name, entry.get("type") or "", status)
        for consumer in entry.get("consumers") or []:
            key = "k:%s/%s" % (name, consumer.get("name"))
            knode = place(1, key, consumer.get("name") or "?", consumer.get("kind") or "", status)
            edges.append(_edge(cnode, knode, status))
            for host in consumer.get("hosts") or []:
                hnode = place(2, "h:" + host, host, "", "host")
                edges.append(_edge(knode, hnode, status))
    height = 40 + max(counters + [1]) * (_NODE_H + _GAP)
    return {"width": _COLUMNS[2][1] + _NODE_W + 20, "height": height, "node_width": _NODE_W,
            "node_height": _NODE_H, "nodes": nodes, "edges": edges, "omitted": omitted}


def _edge(src, dst, status):
    return {"x1": src["x"] + _NODE_W, "y1": src["y"] + _NODE_H // 2, "x2": dst["x"], "y2": dst["y"] + _NODE_H // 2,
            "status": status}


# --- discovery / drift ------------------------------------------------------------------------

def env_var_names(credentials):
    return _drift.env_var_names(credentials)


def kubernetes_targets(credentials):
    return _drift.kubernetes_targets(credentials)


def systemd_references(env_matches, unit_env_files, unit_env_matches=""):
    return _drift.systemd_references(env_matches, unit_env_files, unit_env_matches)


def unit_environment_files(unit_env_files):
    return _drift.unit_environment_files(unit_env_files)


def consumer_drift(credentials, groups=None, systemd_found=None, kubernetes_found=None):
    return _drift.consumer_drift(credentials, groups, systemd_found, kubernetes_found)


class FilterModule(object):
    """credops.rotation inventory filters."""

    def filters(self):
        return {
            "validate_credentials": validate_credentials,
            "credential_warnings": credential_warnings,
            "normalize_credentials": normalize_credentials,
            "dependency_map": dependency_map,
            "due_report": due_report,
            "due_summary": due_summary,
            "dependency_graph": dependency_graph,
            "env_var_names": env_var_names,
            "kubernetes_targets": kubernetes_targets,
            "systemd_references": systemd_references,
            "unit_environment_files": unit_environment_files,
            "consumer_drift": consumer_drift,
        }
