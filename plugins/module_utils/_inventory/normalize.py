# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A record with the contract's defaults filled in (what the roles read)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.credops.rotation.plugins.module_utils import _policy, _time
from ansible_collections.credops.rotation.plugins.module_utils._inventory.model import plain
from ansible_collections.credops.rotation.plugins.module_utils._issuers.registry import issuer_class
from ansible_collections.credops.rotation.plugins.module_utils._stores.registry import store_class


def normalize(name, record):
    """One record with the contract's defaults filled in (a new dict; the input is not changed).

    Adds ``name``; risk standard; the issuer's and the store's defaults, as their kinds
    declare them (``normalize`` of the kind's class: e.g. vault_kv2 store.field value and
    store.mount secret; rest issuer methods POST/DELETE/GET and test.format "{secret}";
    postgres port 5432);
    expect_status/verify.status as lists (verify.status default [200]); consumers default [].
    """
    out = plain(record or {})
    out["name"] = name
    if out.get("last_rotated") not in (None, ""):
        try:
            out["last_rotated"] = _time.format_time(out["last_rotated"])
        except ValueError:
            pass  # validation reports it
    if out.get("risk") in (None, ""):
        out["risk"] = _policy.DEFAULT_RISK
    issuer = out.get("issuer")
    issuer_cls = issuer_class(issuer.get("kind")) if isinstance(issuer, dict) else None
    if issuer_cls is not None:
        issuer_cls.normalize(issuer)
    store = out.get("store")
    store_cls = store_class(store.get("kind")) if isinstance(store, dict) else None
    if store_cls is not None:
        store_cls.normalize(store)
    consumers = out.get("consumers")
    if consumers is None:
        out["consumers"] = consumers = []
    for consumer in consumers if isinstance(consumers, list) else []:
        verify = consumer.get("verify") if isinstance(consumer, dict) else None
        if isinstance(verify, dict):
            status = verify.get("status", 200)
            verify["status"] = status if isinstance(status, list) else [status]
            verify["method"] = str(verify.get("method") or "GET").upper()
    return out


def normalize_all(credentials):
    return dict((name, normalize(name, record)) for name, record in (credentials or {}).items())
