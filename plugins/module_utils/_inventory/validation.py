# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight: ``rotation_credentials`` checked against the contract (/shared/spec/inventory.md).

The whole inventory is checked before anything touches a store or an issuer: every problem at
once, each message naming the credential and the field path
(``payment-gateway-api.consumers[0].env_var``) and saying how to fix it. Fields no block
declares (``fields``) are reported as warnings, not errors (the contract lets fields be added).
Messages never show the value of a secret-bearing field."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from ansible_collections.credops.rotation.plugins.module_utils import _policy, _time
from ansible_collections.credops.rotation.plugins.module_utils._inventory import checks
from ansible_collections.credops.rotation.plugins.module_utils._inventory.checks import (
    HAS_JMESPATH, Report, check_jmespath,
    check_declared, check_mapping, check_method, check_statuses, check_url,
)
from ansible_collections.credops.rotation.plugins.module_utils._inventory.fields import (
    CONSUMER_KINDS, ISSUER_KINDS, SPECS, STORE_KINDS,
)
from ansible_collections.credops.rotation.plugins.module_utils._inventory.model import Inventory, is_int, is_str, show
from ansible_collections.credops.rotation.plugins.module_utils._consumers.registry import consumer_class
from ansible_collections.credops.rotation.plugins.module_utils._issuers.registry import compatible_issuers, issuer_class
from ansible_collections.credops.rotation.plugins.module_utils._stores.registry import store_class
from ansible_collections.credops.rotation.plugins.module_utils._inventory.runbook_fields import (
    check_claims, validate_ids_and_roles, validate_tls_consumers, validate_webhook,
)


# Which issuer kinds can make which credential type (each kind declares its TYPES).
COMPATIBLE_ISSUERS = dict((ctype, compatible_issuers(ctype)) for ctype in _policy.TYPES)

# Data keys of a KV v2 secret the standard runbook writes beside the value itself.
RESERVED_FIELDS = ("key_id", "rotated_at", "rotated_by", "rotation_verified_at")

# How far in the future last_rotated may be before it is an error (clock skew).
FUTURE_TOLERANCE = datetime.timedelta(minutes=5)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CONSUMER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")


def validate(credentials, groups=None, hosts=None, now=None, check_secrets=True, require_contact=True):
    """Check ``rotation_credentials`` against the contract.

    ``groups``: the inventory's ``groups`` (name -> host names); ``hosts``: every inventory
    host name (e.g. ``hostvars.keys()``). When both are None, consumer hosts are not checked
    for existence. ``check_secrets=False`` skips the presence check of the issuer's admin
    secrets (auth token/password/value), for runs that never talk to an issuer (the due
    report). ``require_contact=False`` accepts a record without ``rotation_contact`` (the due
    report shows it as a finding of the row instead: no owner blocks no report).
    Returns ``(errors, warnings)``: lists of strings; valid input gives no errors.
    """
    report = Report(check_secrets, require_contact)
    inventory = Inventory(groups, hosts)
    now = _time.parse_time(now) if now is not None else _time.now()
    if credentials is None:
        report.error("rotation_credentials", "is not defined",
                     "define rotation_credentials (usually in group_vars/all/credentials.yml): a "
                     "mapping from credential name to its record")
        return report.errors, report.warnings
    if not isinstance(credentials, dict):
        report.error("rotation_credentials", "must be a mapping of credential name to record, got %s"
                     % type(credentials).__name__, "write `rotation_credentials: {NAME: {type: ..., ...}}`")
        return report.errors, report.warnings
    if not HAS_JMESPATH:
        report.error("rotation_credentials", "the jmespath Python library is missing on the controller",
                     "pip install jmespath in the Python that runs ansible-playbook")
    claims = {}
    for name in credentials:
        record = credentials[name]
        path = str(name)
        if not isinstance(name, str) or not _NAME.match(name):
            report.error(path, "credential name %s is not usable" % show(name),
                         "use letters, digits, '.', '_' and '-', starting with a letter or digit")
        if not isinstance(record, dict):
            report.error(path, "the record must be a mapping, got %s" % type(record).__name__,
                         "give the credential a mapping with type, issuer, store and consumers")
            continue
        _validate_record(report, path, record, inventory, now, claims)
    check_claims(report, claims)
    return report.errors, report.warnings


def _validate_record(report, path, record, inventory, now, claims):
    report.unknown_fields(path, record, "record")
    ctype = record.get("type")
    if ctype is None:
        report.error(path + ".type", "missing", "set type to one of: " + ", ".join(_policy.TYPES))
    elif ctype not in _policy.TYPES:
        report.error(path + ".type", "unknown type %s" % show(ctype),
                     "use one of: " + ", ".join(_policy.TYPES))
        ctype = None

    risk = record.get("risk")
    if risk is not None and risk not in _policy.RISKS:
        report.error(path + ".risk", "unknown risk %s" % show(risk),
                     "use standard (the default) or high")

    if "max_age_days" in record:
        value = record.get("max_age_days")
        if not is_int(value) or value <= 0:
            report.error(path + ".max_age_days", "must be a positive whole number of days, got %s"
                         % show(value), "write e.g. `max_age_days: 30`, or remove it to use the policy table")
        elif ctype and _policy.POLICY[ctype].get("standard"):
            table = _policy.max_age_days({"type": ctype, "risk": risk if risk in _policy.RISKS else None})
            if value > table:
                report.warn(path + ".max_age_days", "%d days relaxes the policy table (%d days for %s, %s risk)"
                            % (value, table, ctype, risk or _policy.DEFAULT_RISK))

    contact = record.get("rotation_contact")
    if not is_str(contact) and report.require_contact:
        report.error(path + ".rotation_contact", "missing or empty" if contact in (None, "") else
                     "must be a string, got %s" % type(contact).__name__,
                     "name who owns this credential, e.g. `rotation_contact: payments-team@example.org`")

    if record.get("last_rotated") not in (None, ""):
        try:
            when = _time.parse_time(record.get("last_rotated"))
        except ValueError:
            report.error(path + ".last_rotated", "%s is not an ISO-8601 time" % show(record.get("last_rotated")),
                         "write it quoted, in UTC, e.g. `last_rotated: \"2024-08-15T10:30:00Z\"`")
        else:
            if when > now + FUTURE_TOLERANCE:
                report.error(path + ".last_rotated", "%s is in the future" % _time.format_time(when),
                             "correct the time (UTC, with a trailing Z), or remove it")

    issuer = _kind_block(report, path, record, "issuer", "an issuer", ISSUER_KINDS)
    if issuer is not None:
        _validate_issuer(report, path + ".issuer", issuer, ctype)
    store = _kind_block(report, path, record, "store", "a store", STORE_KINDS)
    if store is not None:
        _validate_store(report, path + ".store", store)

    consumers = record.get("consumers")
    if consumers in (None, []):
        report.error(path + ".consumers", "missing or empty",
                     "list every application that holds this credential (the dependency map); "
                     "run discover_consumers.yml to find them")
    elif not isinstance(consumers, list):
        report.error(path + ".consumers", "must be a list of consumers, got %s" % type(consumers).__name__,
                     "write consumers as a YAML list (`- name: ...`)")
    else:
        seen = {}
        for index, consumer in enumerate(consumers):
            cpath = "%s.consumers[%d]" % (path, index)
            if not isinstance(consumer, dict):
                report.error(cpath, "must be a mapping", "give each consumer name, kind and its fields")
                continue
            cname = consumer.get("name")
            if isinstance(cname, str) and cname in seen:  # (a list or mapping is reported by its checks)
                report.error(cpath + ".name", "%s is already used by consumers[%d]" % (show(cname), seen[cname]),
                             "give each consumer of a credential its own name")
            elif isinstance(cname, str):
                seen[cname] = index
            _validate_consumer(report, cpath, consumer, inventory, path, claims)
            _consumer_with_store(report, cpath, consumer, record.get("store"))
    validate_webhook(report, path, record, ctype, inventory, claims)
    validate_tls_consumers(report, path, record, ctype)
    validate_ids_and_roles(report, path, record, inventory, claims)


# --- issuer -----------------------------------------------------------------------------------

def _kind_block(report, path, record, name, article, kinds):
    """The record's ``name`` block (issuer, store) when it is a mapping; else None, and the error."""
    block = record.get(name)
    if block is None:
        report.error("%s.%s" % (path, name), "missing", "add %s mapping with kind: %s" % (article, ", ".join(kinds)))
    elif not isinstance(block, dict):
        report.error("%s.%s" % (path, name), "must be a mapping", "give %s a mapping with kind: ..." % name)
    else:
        return block
    return None


def _known_kind(report, path, kind, kinds, what):
    """Whether ``kind`` is one of ``kinds``; the error names the field otherwise."""
    if kind is None:
        report.error(path + ".kind", "missing", "set kind to one of: " + ", ".join(kinds))
        return False
    if kind not in kinds:
        report.error(path + ".kind", "unknown %s kind %s" % (what, show(kind)), "use one of: " + ", ".join(kinds))
        return False
    return True


def _validate_issuer(report, path, issuer, ctype):
    kind = issuer.get("kind")
    if not _known_kind(report, path, kind, ISSUER_KINDS, "issuer"):
        return
    if ctype and kind not in COMPATIBLE_ISSUERS.get(ctype, ()):
        report.error(path + ".kind", "type %s cannot be issued by %s" % (ctype, kind),
                     "use issuer kind %s for type %s" % (" or ".join(COMPATIBLE_ISSUERS.get(ctype, ())), ctype))
    report.unknown_fields(path, issuer, "issuer." + kind, "issuer")
    issuer_class(kind).preflight(report, path, issuer, checks)
    check_declared(report, path, issuer, SPECS["issuer." + kind])


# --- store ------------------------------------------------------------------------------------

def _validate_store(report, path, store):
    kind = store.get("kind")
    if not _known_kind(report, path, kind, STORE_KINDS, "store"):
        return
    report.unknown_fields(path, store, "store." + kind, "store")
    field = store.get("field")
    if field is not None:
        if not is_str(field):
            report.error(path + ".field", "must be a non-empty string", "name the key that holds the value, e.g. api_key")
        elif field in RESERVED_FIELDS or field.startswith("previous_"):
            report.error(path + ".field", "%s is reserved for the rotation's own bookkeeping" % show(field),
                         "name the value's key something else (not %s or previous_*)" % ", ".join(RESERVED_FIELDS))
    store_class(kind).preflight(report, path, store, checks)

    check_declared(report, path, store, SPECS["store." + kind])


# --- consumers --------------------------------------------------------------------------------

def _consumer_with_store(report, path, consumer, store):
    """The consumer kind's checks that need the record's store kind (e.g. an ExternalSecret
    against a store that keeps the new value beside the current one)."""
    cls = consumer_class(consumer.get("kind"))
    if cls is not None:
        store_cls = store_class(store.get("kind")) if isinstance(store, dict) else None
        cls.preflight_with_store(report, path, consumer, store_cls)


def _validate_consumer(report, path, consumer, inventory, credential, claims):
    name = consumer.get("name")
    if not is_str(name):
        report.error(path + ".name", "missing or empty" if name in (None, "") else "must be a string",
                     "give the consumer a name, e.g. `name: web-app`")
    elif not _CONSUMER_NAME.match(name):
        report.error(path + ".name", "%s has characters that cannot be recorded (commas, spaces, ...)" % show(name),
                     "use letters, digits and ._@- (the names go into the store's comma-separated metadata)")
    kind = consumer.get("kind")
    cls = consumer_class(kind)
    if cls is None:
        report.error(path + ".kind", "missing" if kind is None else "unknown consumer kind %s" % show(kind),
                     "use one of: " + ", ".join(CONSUMER_KINDS))
        return
    report.unknown_fields(path, consumer, "consumer." + kind)
    cls.preflight(report, path, consumer, inventory, claims, checks)
    verify = consumer.get("verify")
    if check_mapping(report, path + ".verify", verify, False, "describe the health check: url, status, json"):
        _validate_verify(report, path + ".verify", verify)


def _validate_verify(report, path, verify):
    report.unknown_fields(path, verify, "verify")
    check_url(report, path + ".url", verify.get("url"), what="health-check URL")
    check_method(report, path + ".method", verify.get("method"), "GET")
    check_statuses(report, path + ".status", verify.get("status"))
    checks = verify.get("json")
    if checks is not None:
        if not isinstance(checks, dict):
            report.error(path + ".json", "must be a mapping of JMESPath to expected value",
                         "write e.g. `json: {payment_gateway: connected}`")
        else:
            for key in checks:
                check_jmespath(report, "%s.json[%s]" % (path, show(key)), key, example="payment_gateway")
