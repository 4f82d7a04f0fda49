# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dependency map: credential -> consumers -> hosts (groups expanded), and host -> what it holds."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.credops.rotation.plugins.module_utils._consumers.registry import consumer_class
from ansible_collections.credops.rotation.plugins.module_utils._inventory.model import Inventory, consumer_hosts, plain


def dependency_map(credentials, groups=None, hosts=None):
    """credential -> consumers -> hosts (groups expanded), and host -> what it holds.

    Returns::

        {"credentials": {NAME: {"type": ..., "consumers": [{"name", "kind", "hosts": [...],
                                  + the fields the kind's MAP_FIELDS name, e.g.
                                    env_file/env_var/service}], "hosts": [...]}},
         "hosts": {HOST: {"credentials": [NAME, ...],
                          "consumers": [{"credential", "consumer", "kind"}, ...]}}}
    """
    inventory = Inventory(groups, hosts)
    creds = {}
    by_host = {}
    held_names = {}
    for name in sorted(credentials or {}):
        record = credentials[name] if isinstance(credentials[name], dict) else {}
        entry = {"type": record.get("type"), "consumers": [], "hosts": []}
        entry_hosts = set()
        consumers = record.get("consumers") if isinstance(record.get("consumers"), list) else []
        for consumer in consumers:
            if not isinstance(consumer, dict):
                continue
            kind = consumer.get("kind")
            chosts = consumer_hosts(consumer, inventory)
            item = {"name": consumer.get("name"), "kind": kind, "hosts": chosts}
            cls = consumer_class(kind)
            for field in cls.MAP_FIELDS if cls is not None else ():
                if consumer.get(field) not in (None, ""):
                    item[field] = plain(consumer.get(field))
            entry["consumers"].append(item)
            for host in chosts:
                if host not in entry_hosts:
                    entry_hosts.add(host)
                    entry["hosts"].append(host)
                held = by_host.get(host)
                if held is None:
                    held = by_host[host] = {"credentials": [], "consumers": []}
                    held_names[host] = set()
                if name not in held_names[host]:
                    held_names[host].add(name)
                    held["credentials"].append(name)
                held["consumers"].append({"credential": name, "consumer": consumer.get("name"), "kind": kind})
        creds[name] = entry
    return {"credentials": creds, "hosts": dict(sorted(by_host.items()))}
