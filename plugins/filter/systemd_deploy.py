# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy role's batch for the systemd consumers of one host: what the systemd_consumer module
writes (systemd_entries), and what it did per consumer (systemd_outcome, systemd_results; the
systemd_consumer action plugin records its own run with the same functions, plugin_utils/systemd_deploy).
Documented in the .yml files of the same names beside this file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.credops.rotation.plugins.plugin_utils import systemd_deploy as _deploy

# what the deploy role checks of a consumer's verify block (verify_endpoint's options of the same names)
VERIFY_KEYS = ("url", "method", "status", "json", "validate_certs", "ca_path")


def _consumer(credentials, item):
    return ((credentials.get(item["credential"]) or {}).get("consumers") or [])[item["index"]]


def _batched(credentials, item):
    return item.get("kind") == "systemd" and "cert_file" not in _consumer(credentials, item)


def _verify(consumer):
    verify = consumer.get("verify")
    return dict((k, verify[k]) for k in VERIFY_KEYS if k in verify) if isinstance(verify, dict) else None


def systemd_entries(work, credentials, values, which="new", states=None, force=False):
    """The environment-file consumers among ``work`` (this host's items) and the module's entries
    for them: {"items": [...], "entries": [...], "refused": {"credential consumer": error}}. Each
    entry carries the key id of the value and the consumer's verify block; an item that cannot be
    written gets one entry with ``refused`` (the reason) and no value."""
    out = {"items": [], "entries": [], "refused": {}}
    for item in work or []:
        if not _batched(credentials, item):
            continue
        consumer = _consumer(credentials, item)
        name = item["credential"]
        held = (values or {}).get(name) or {}
        out["items"].append(item)
        restart = bool(force) or (which == "new" and ((states or {}).get(name) or {}).get("phase") == "pending")
        value, key_id = held.get(which), held.get(which + "_id")
        base = {"path": consumer["env_file"], "service": consumer["service"], "restart": restart,
                "credential": name, "consumer": item["consumer"], "key_id": key_id or None}
        verify = _verify(consumer)
        if verify is not None:
            base["verify"] = verify
        refused = None
        if value is None:
            refused = "the store holds no %s value of %s, so %s cannot be written" % (which, name, consumer["env_var"])
        elif consumer.get("id_env_var") and not key_id:
            refused = ("the store holds no key id for the %s value of %s, so %s cannot be written"
                       % (which, name, consumer["id_env_var"]))
        if refused:
            out["refused"]["%s %s" % (name, item["consumer"])] = refused
            out["entries"].append(dict(base, name=consumer["env_var"], refused=refused))
            continue
        out["entries"].append(dict(base, name=consumer["env_var"], value=value))
        if consumer.get("id_env_var"):
            out["entries"].append(dict(base, name=consumer["id_env_var"], value=key_id))
    return out


def _names(credentials, item):
    consumer = _consumer(credentials, item)
    return {"credential": item["credential"], "consumer": item["consumer"], "service": consumer.get("service"),
            "env_var": consumer.get("env_var", ""), "env_file": consumer.get("env_file", "")}


def systemd_outcome(env, result, credentials):
    """Per batched item, what the systemd_consumer module did (``result``, its registered result or
    the failure rescued): a list of the items with failed, changed, restarted, service, step, error."""
    items = env.get("items", [])
    consumers = [dict(_names(credentials, item), refused=env.get("refused", {}).get(
        "%s %s" % (item["credential"], item["consumer"]))) for item in items]
    return [dict(item, **dict((k, row[k]) for k in ("service", "failed", "changed", "restarted", "step", "error")))
            for item, row in zip(items, _deploy.outcome(consumers, result))]


def systemd_results(outcome, verified=None, which="new"):
    """What to record of the batch, from the outcome and the verify loop's registered result (items
    matched by ``deploy_item``): {"results": deploy_results entries ({credential: [{consumer, kind,
    failed, changed, verified, step, error}]}), "verified": [{credential, consumer, attempts}],
    "failed": [{credential, consumer, step, error}]}."""
    checks = {}
    for res in (verified or {}).get("results", []):
        item = res.get("deploy_item") or {}
        if not res.get("skipped"):
            checks[(item.get("credential"), item.get("consumer"))] = res
    return _deploy.record(outcome, checks, which)


def deploy_audit_entry(row, event, host, values=None, which="new"):
    """An entry for audit_event's ``entries`` from a row of the outcome or the results: the
    consumer at ``host``, the key id of the ``which`` value, and the row's facts as details."""
    key_id = (((values or {}).get(row["credential"]) or {}).get(which + "_id"))
    return _deploy.audit_entry(row, event, host, key_id, which)


class FilterModule(object):
    def filters(self):
        return {"systemd_entries": systemd_entries, "systemd_outcome": systemd_outcome,
                "systemd_results": systemd_results, "deploy_audit_entry": deploy_audit_entry}
