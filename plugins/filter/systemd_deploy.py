# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy role's batch for the systemd consumers of one host: what the systemd_consumer action
writes (systemd_entries; what it did per consumer is recorded by the action itself, with
plugin_utils/systemd_deploy). Documented in systemd_entries.yml beside this file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

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


class FilterModule(object):
    def filters(self):
        return {"systemd_entries": systemd_entries}
