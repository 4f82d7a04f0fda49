# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory model: preflight validation, normalisation, the dependency map and drift.

``rotation_credentials`` (the inventory contract, /shared/spec/inventory.md) is checked as a
whole before anything touches a store or an issuer: every problem at once, each message
naming the credential and the field path (``payment-gateway-api.consumers[0].env_var``) and
saying how to fix it. Fields this file does not know are reported as warnings, not errors
(the contract lets fields be added). Messages never show the value of a secret-bearing field.

Pure Python (jmespath for the JMESPath checks); no I/O, so modules, filters, the lookup and
the benchmark all run the same code.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import datetime
import re

try:
    import jmespath
    HAS_JMESPATH = True
except ImportError:  # pragma: no cover - reported as a validation error
    HAS_JMESPATH = False

from ansible_collections.credops.rotation.plugins.module_utils import _policy
from ansible_collections.credops.rotation.plugins.module_utils._http import HTTP_ARGSPEC
from ansible_collections.credops.rotation.plugins.module_utils._issuers.registry import ISSUER_ARGSPEC, ISSUERS
from ansible_collections.credops.rotation.plugins.module_utils._stores.registry import STORE_ARGSPEC, STORES

ISSUER_KINDS = tuple(ISSUERS)
STORE_KINDS = tuple(STORES)
CONSUMER_KINDS = ("systemd", "kubernetes", "batch")
AUTH_TYPES = ("bearer", "basic", "header")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

# Which issuer kinds can make which credential type.
COMPATIBLE_ISSUERS = {
    "api_key": ("rest", "aws_iam", "generated"),
    "oauth_client_secret": ("rest", "generated"),
    "service_account_token": ("rest", "aws_iam", "generated"),
    "database": ("postgres", "generated"),
    "webhook_secret": ("generated",),
    "certificate": ("vault_pki",),
}

# Data keys of a KV v2 secret the standard runbook writes beside the value itself.
RESERVED_FIELDS = ("key_id", "rotated_at", "rotated_by", "rotation_verified_at")

# Secret-bearing fields: their values never appear in a message.
SECRET_AUTH_FIELDS = ("token", "password", "value")

# How far in the future last_rotated may be before it is an error (clock skew).
FUTURE_TOLERANCE = datetime.timedelta(minutes=5)
MIN_GENERATED_LENGTH = 16

KNOWN = {
    "record": ("type", "risk", "max_age_days", "rotation_contact", "last_rotated", "issuer",
               "store", "consumers", "description", "notes", "tags"),
    # what the deploy role and the verify step use (anything else is warned about, and ignored)
    "consumer.systemd": ("name", "kind", "hosts", "env_file", "env_var", "service", "verify"),
    "consumer.kubernetes": ("name", "kind", "cluster", "namespace", "external_secret", "secret",
                            "secret_key", "deployments", "verify", "wait_timeout"),
    "consumer.batch": ("name", "kind", "hosts", "env_file", "env_var", "verify"),
    "verify": ("url", "status", "json", "method", "validate_certs", "ca_path"),
}

# The issuer and store blocks go to the modules as they are, and a module refuses a field its
# argument spec does not know (Unsupported parameters), possibly after something changed (the
# store step comes after the issue step). So their fields come from those argument specs:
# a field of another kind is ignored (a warning), a field no kind has is an error.
_REST_OPTIONS = ISSUERS["rest"].ARGSPEC
for _kind, _cls in ISSUERS.items():
    KNOWN["issuer." + _kind] = ("kind",) + tuple(HTTP_ARGSPEC) + tuple(_cls.ARGSPEC)
#: what the modules accept at all, per block (the union over the kinds); in the rest
#: issuer's sub-blocks what is known is all that is accepted
ACCEPTED = {"issuer": tuple(ISSUER_ARGSPEC["options"]), "store": tuple(STORE_ARGSPEC)}
for _block in ("auth", "create", "revoke", "test", "usage"):
    KNOWN[_block] = ACCEPTED[_block] = tuple(_REST_OPTIONS[_block]["options"])
# STORE_ARGSPEC is the union of both kinds: these four are aws_secretsmanager's own
_AWS_STORE_ONLY = ("secret_id", "region", "endpoint_url", "profile")
KNOWN["store.vault_kv2"] = tuple(k for k in STORE_ARGSPEC if k not in _AWS_STORE_ONLY)
KNOWN["store.aws_secretsmanager"] = ("kind",) + _AWS_STORE_ONLY + ("field", "validate_certs", "ca_cert", "timeout")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CONSUMER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UNIT = re.compile(r"^[A-Za-z0-9:_.@\\-]+$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_IAM_USER = re.compile(r"^[\w+=,.@-]{1,64}$")
_SECRET_ID = re.compile(r"^(arn:[\w-]+:secretsmanager:[\w-]+:\d{12}:secret:)?[\w/+=.@-]{1,512}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_TTL = re.compile(r"^(\d+|(\d+[smhd])+)$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_URL = re.compile(r"^(https?)://([^/\s?#]+)([^\s]*)$")
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def _is_str(value):
    return isinstance(value, str) and value.strip() != ""


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value, limit=60):
    """A non-secret value, shortened for a message."""
    text = repr(value) if not isinstance(value, str) else "'%s'" % value
    return text if len(text) <= limit else text[:limit - 3] + "...'"


def _templated(value):
    """A value still holding Jinja (validated for shape only, not content)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


class _Report(object):
    def __init__(self, check_secrets=True, require_contact=True):
        self.errors = []
        self.warnings = []
        self.check_secrets = check_secrets
        self.require_contact = require_contact

    def error(self, path, problem, fix):
        self.errors.append("%s: %s. Fix: %s." % (path, problem.rstrip("."), fix.rstrip(".")))

    def warn(self, path, text):
        self.warnings.append("%s: %s" % (path, text))

    def unknown_fields(self, path, mapping, known_key, accepted_key=None):
        """Warn about fields not in KNOWN[known_key]; with accepted_key, fields not even in
        ACCEPTED[accepted_key] (a module would refuse them) are errors."""
        known = KNOWN[known_key]
        accepted = ACCEPTED.get(accepted_key) if accepted_key else None
        for key in mapping:
            if key in known:
                continue
            if accepted is not None and key not in accepted:
                self.error("%s.%s" % (path, key), "unknown field, the modules refuse it",
                           "remove it or fix its name; the fields of this block are: %s" % ", ".join(sorted(known)))
            else:
                self.warn("%s.%s" % (path, key),
                          "unknown field, ignored (known here: %s)" % ", ".join(known))


class Inventory(object):
    """The inventory's groups and hosts, to check and expand consumer ``hosts``."""

    def __init__(self, groups=None, hosts=None):
        self.known = groups is not None or hosts is not None
        self.groups = dict((k, list(v or [])) for k, v in (groups or {}).items())
        self.hosts = set(hosts or [])
        for members in self.groups.values():
            self.hosts.update(members)
        self.hosts.update(("localhost",))

    def exists(self, name):
        return not self.known or name in self.groups or name in self.hosts

    def expand(self, names):
        """Host names for a host/group name or a list of them (groups expanded, order kept)."""
        if names is None:
            return []
        if isinstance(names, str):
            members = self.groups.get(names)
            return list(members) if members is not None else [names]
        out, seen = [], set()
        for name in names:
            members = self.groups.get(name) if name in self.groups else [name]
            for host in members:
                if host not in seen:
                    seen.add(host)
                    out.append(host)
        return out


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

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
    report = _Report(check_secrets, require_contact)
    inventory = Inventory(groups, hosts)
    now = _policy.parse_time(now) if now is not None else datetime.datetime.now(_policy.UTC)
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
            report.error(path, "credential name %s is not usable" % _show(name),
                         "use letters, digits, '.', '_' and '-', starting with a letter or digit")
        if not isinstance(record, dict):
            report.error(path, "the record must be a mapping, got %s" % type(record).__name__,
                         "give the credential a mapping with type, issuer, store and consumers")
            continue
        _validate_record(report, path, record, inventory, now, claims)
    _check_claims(report, claims)
    return report.errors, report.warnings


def _validate_record(report, path, record, inventory, now, claims):
    report.unknown_fields(path, record, "record")
    ctype = record.get("type")
    if ctype is None:
        report.error(path + ".type", "missing", "set type to one of: " + ", ".join(_policy.TYPES))
    elif ctype not in _policy.TYPES:
        report.error(path + ".type", "unknown type %s" % _show(ctype),
                     "use one of: " + ", ".join(_policy.TYPES))
        ctype = None

    risk = record.get("risk")
    if risk is not None and risk not in _policy.RISKS:
        report.error(path + ".risk", "unknown risk %s" % _show(risk),
                     "use standard (the default) or high")

    if "max_age_days" in record:
        value = record.get("max_age_days")
        if not _is_int(value) or value <= 0:
            report.error(path + ".max_age_days", "must be a positive whole number of days, got %s"
                         % _show(value), "write e.g. `max_age_days: 30`, or remove it to use the policy table")
        elif ctype and _policy.POLICY[ctype].get("standard"):
            table = _policy.max_age_days({"type": ctype, "risk": risk if risk in _policy.RISKS else None})
            if value > table:
                report.warn(path + ".max_age_days", "%d days relaxes the policy table (%d days for %s, %s risk)"
                            % (value, table, ctype, risk or _policy.DEFAULT_RISK))

    contact = record.get("rotation_contact")
    if not _is_str(contact) and report.require_contact:
        report.error(path + ".rotation_contact", "missing or empty" if contact in (None, "") else
                     "must be a string, got %s" % type(contact).__name__,
                     "name who owns this credential, e.g. `rotation_contact: payments-team@example.org`")

    if record.get("last_rotated") not in (None, ""):
        try:
            when = _policy.parse_time(record.get("last_rotated"))
        except ValueError:
            report.error(path + ".last_rotated", "%s is not an ISO-8601 time" % _show(record.get("last_rotated")),
                         "write it quoted, in UTC, e.g. `last_rotated: \"2024-08-15T10:30:00Z\"`")
        else:
            if when > now + FUTURE_TOLERANCE:
                report.error(path + ".last_rotated", "%s is in the future" % _policy.format_time(when),
                             "correct the time (UTC, with a trailing Z), or remove it")

    issuer = record.get("issuer")
    if issuer is None:
        report.error(path + ".issuer", "missing", "add an issuer mapping with kind: " + ", ".join(ISSUER_KINDS))
    elif not isinstance(issuer, dict):
        report.error(path + ".issuer", "must be a mapping", "give issuer a mapping with kind: ...")
    else:
        _validate_issuer(report, path + ".issuer", issuer, ctype)

    store = record.get("store")
    if store is None:
        report.error(path + ".store", "missing", "add a store mapping with kind: " + ", ".join(STORE_KINDS))
    elif not isinstance(store, dict):
        report.error(path + ".store", "must be a mapping", "give store a mapping with kind: ...")
    else:
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
            if cname in seen and cname is not None:
                report.error(cpath + ".name", "%s is already used by consumers[%d]" % (_show(cname), seen[cname]),
                             "give each consumer of a credential its own name")
            elif isinstance(cname, str):
                seen[cname] = index
            _validate_consumer(report, cpath, consumer, inventory, path, claims)
            _external_secret_store(report, cpath, consumer, record.get("store"))
    _validate_webhook(report, path, record, ctype, inventory, claims)
    _validate_tls_consumers(report, path, record, ctype)
    _validate_ids_and_roles(report, path, record, inventory, claims)


# --- issuer -----------------------------------------------------------------------------------

def _validate_issuer(report, path, issuer, ctype):
    kind = issuer.get("kind")
    if kind is None:
        report.error(path + ".kind", "missing", "set kind to one of: " + ", ".join(ISSUER_KINDS))
        return
    if kind not in ISSUER_KINDS:
        report.error(path + ".kind", "unknown issuer kind %s" % _show(kind), "use one of: " + ", ".join(ISSUER_KINDS))
        return
    if ctype and kind not in COMPATIBLE_ISSUERS[ctype]:
        report.error(path + ".kind", "type %s cannot be issued by %s" % (ctype, kind),
                     "use issuer kind %s for type %s" % (" or ".join(COMPATIBLE_ISSUERS[ctype]), ctype))
    report.unknown_fields(path, issuer, "issuer." + kind, "issuer")
    {"rest": _validate_rest, "aws_iam": _validate_aws_iam, "postgres": _validate_postgres,
     "vault_pki": _validate_vault_pki, "generated": _validate_generated}[kind](report, path, issuer)


def _url(report, path, value, required=True, what="URL", secret_travels=None):
    if value in (None, ""):
        if required:
            report.error(path, "missing", "give the %s, e.g. https://api.example.com" % what)
        return
    if not isinstance(value, str):
        report.error(path, "must be a string URL", "write it as https://host[:port][/path]")
        return
    if _templated(value):
        return
    match = _URL.match(value.strip())
    if not match:
        report.error(path, "%s is not an http(s) URL" % _show(value),
                     "write it as https://host[:port][/path]")
        return
    host = match.group(2).rsplit("@", 1)[-1]
    hostname = host.split(":")[0] if not host.startswith("[") else host.split("]")[0] + "]"
    if secret_travels and match.group(1) == "http" and hostname not in _LOOPBACK_HOSTS \
            and not hostname.startswith("127."):
        report.warn(path, "plain http: %s travels unencrypted" % secret_travels)


def _method(report, path, value, default):
    if value is None:
        return
    if not isinstance(value, str) or value.upper() not in HTTP_METHODS:
        report.error(path, "unknown HTTP method %s" % _show(value),
                     "use one of %s (default %s)" % (", ".join(HTTP_METHODS), default))


def _api_path(report, path, value, allowed, required_placeholders=(), example="/v1/api-keys"):
    if value in (None, ""):
        report.error(path, "missing", "give the request path below base_url, e.g. %s" % example)
        return
    if not isinstance(value, str):
        report.error(path, "must be a string", "give the request path below base_url, e.g. %s" % example)
        return
    if not value.startswith("/"):
        report.error(path, "%s must start with '/'" % _show(value),
                     "give the path below base_url, e.g. %s" % example)
    found = _PLACEHOLDER.findall(value)
    for placeholder in found:
        if placeholder not in allowed:
            report.error(path, "unknown placeholder {%s}" % placeholder,
                         "only %s can be used here" % (", ".join("{%s}" % a for a in allowed) or "no placeholder"))
    for placeholder in required_placeholders:
        if placeholder not in found:
            report.error(path, "%s has no {%s}" % (_show(value), placeholder),
                         "put {%s} where the key's %s goes, e.g. %s" % (placeholder, placeholder, example))


def _jmespath(report, path, value, required=True, example="id"):
    if value in (None, ""):
        if required:
            report.error(path, "missing", "give a JMESPath into the response, e.g. `%s`" % example)
        return
    if not isinstance(value, str):
        report.error(path, "must be a JMESPath string", "give a JMESPath into the response, e.g. `%s`" % example)
        return
    if not HAS_JMESPATH:
        return
    try:
        jmespath.compile(value)
    except Exception as exc:  # jmespath raises ParseError/LexerError/IncompleteExpressionError
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        report.error(path, "%s is not a valid JMESPath (%s)" % (_show(value), detail),
                     "check the expression at https://jmespath.org, e.g. `%s`" % example)


def _statuses(report, path, value):
    if value is None:
        return
    values = value if isinstance(value, list) else [value]
    if not values or not all(_is_int(v) and 100 <= v <= 599 for v in values):
        report.error(path, "%s is not an HTTP status or a list of them" % _show(value),
                     "write e.g. `200` or `[200, 201]`")


def _mapping(report, path, value, required, fix):
    if value is None:
        if required:
            report.error(path, "missing", fix)
        return False
    if not isinstance(value, dict):
        report.error(path, "must be a mapping, got %s" % type(value).__name__, fix)
        return False
    return True


def _validate_rest(report, path, issuer):
    _url(report, path + ".base_url", issuer.get("base_url"), what="API's base URL",
         secret_travels="the admin credentials and the new keys")
    _auth(report, path + ".auth", issuer.get("auth"), "give the admin credentials, e.g. `auth: {type: bearer, "
          "token: \"{{ lookup('ansible.builtin.env', 'PROVIDER_ADMIN_TOKEN') }}\"}`")

    create = issuer.get("create")
    if _mapping(report, path + ".create", create, True,
                "describe the request that makes a new key: method, path, secret_path, id_path"):
        cpath = path + ".create"
        report.unknown_fields(cpath, create, "create", "create")
        _method(report, cpath + ".method", create.get("method"), "POST")
        _api_path(report, cpath + ".path", create.get("path"), ())
        if "body" in create and "form" in create:
            report.error(cpath, "both body and form are given", "use body for JSON, form for form-encoded, not both")
        if "form" in create and not isinstance(create.get("form"), dict):
            report.error(cpath + ".form", "must be a mapping of form fields", "write e.g. `form: {name: app}`")
        _statuses(report, cpath + ".expect_status", create.get("expect_status"))
        _jmespath(report, cpath + ".secret_path", create.get("secret_path"), example="api_key")
        needs_id = isinstance(issuer.get("revoke"), dict) or isinstance(issuer.get("usage"), dict)
        _jmespath(report, cpath + ".id_path", create.get("id_path"), required=needs_id, example="id")

    revoke = issuer.get("revoke")
    if _mapping(report, path + ".revoke", revoke, True,
                "describe the request that revokes a key, e.g. `revoke: {method: DELETE, path: /v1/api-keys/{id}}`"):
        rpath = path + ".revoke"
        report.unknown_fields(rpath, revoke, "revoke", "revoke")
        _method(report, rpath + ".method", revoke.get("method"), "DELETE")
        _api_path(report, rpath + ".path", revoke.get("path"), ("id",), ("id",), example="/v1/api-keys/{id}")
        _statuses(report, rpath + ".expect_status", revoke.get("expect_status"))

    test = issuer.get("test")
    if _mapping(report, path + ".test", test, False, "describe the request that proves a key works"):
        tpath = path + ".test"
        report.unknown_fields(tpath, test, "test", "test")
        _method(report, tpath + ".method", test.get("method"), "GET")
        _api_path(report, tpath + ".path", test.get("path"), ("id",), example="/v1/test")
        header = test.get("header")
        if not _is_str(header) or not _HEADER_NAME.match(header):
            report.error(tpath + ".header", "missing" if header in (None, "") else
                         "%s is not an HTTP header name" % _show(header),
                         "name the header that carries the key, e.g. `header: Authorization`")
        fmt = test.get("format")
        if fmt is not None:
            if not isinstance(fmt, str) or "{secret}" not in fmt:
                report.error(tpath + ".format", "%s does not contain {secret}" % _show(fmt),
                             "write where the key goes, e.g. `format: \"Bearer {secret}\"`")
            else:
                for placeholder in _PLACEHOLDER.findall(fmt):
                    if placeholder != "secret":
                        report.error(tpath + ".format", "unknown placeholder {%s}" % placeholder,
                                     "only {secret} can be used here")
        _statuses(report, tpath + ".expect_status", test.get("expect_status"))

    usage = issuer.get("usage")
    if _mapping(report, path + ".usage", usage, False, "describe the issuer's record of who used a key"):
        upath = path + ".usage"
        report.unknown_fields(upath, usage, "usage", "usage")
        _method(report, upath + ".method", usage.get("method"), "GET")
        _api_path(report, upath + ".path", usage.get("path"), ("id", "since"), ("id",),
                  example="/v1/audit-log?api_key_id={id}&since={since}")
        _jmespath(report, upath + ".events_path", usage.get("events_path"), example="entries")
        _jmespath(report, upath + ".time_path", usage.get("time_path"), example="timestamp")
        _jmespath(report, upath + ".source_path", usage.get("source_path"), required=False, example="source_ip")


def _required_str(report, path, value, fix):
    if not _is_str(value):
        report.error(path, "missing or empty" if value in (None, "") else
                     "must be a string, got %s" % type(value).__name__, fix)
        return False
    return True


def _validate_aws_iam(report, path, issuer):
    if _required_str(report, path + ".user_name", issuer.get("user_name"),
                     "name the IAM user whose access keys are rotated, e.g. `user_name: integration-service-account`"):
        if not _IAM_USER.match(issuer["user_name"]):
            report.error(path + ".user_name", "%s is not a valid IAM user name" % _show(issuer["user_name"]),
                         "use up to 64 letters, digits and +=,.@_-")


def _validate_postgres(report, path, issuer):
    for field, example in (("host", "db.example.org"), ("db", "postgres"), ("admin_user", "rotation_admin"),
                           ("role", "app_user")):
        if field == "role" and "roles" in issuer:
            continue  # the alternating procedure: see _validate_postgres_roles
        _required_str(report, "%s.%s" % (path, field), issuer.get(field), "set it, e.g. `%s: %s`" % (field, example))
    port = issuer.get("port")
    if port is not None and not (_is_int(port) and 1 <= port <= 65535):
        report.error(path + ".port", "%s is not a TCP port" % _show(port),
                     "write a number from 1 to 65535 (default 5432)")
    sslmode = issuer.get("sslmode")
    modes = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
    if sslmode is not None and sslmode not in modes:
        report.error(path + ".sslmode", "unknown sslmode %s" % _show(sslmode), "use one of: " + ", ".join(modes))


def _validate_vault_pki(report, path, issuer):
    for field, example in (("mount", "pki"), ("role", "web-server"), ("common_name", "api.example.org")):
        _required_str(report, "%s.%s" % (path, field), issuer.get(field), "set it, e.g. `%s: %s`" % (field, example))
    ttl = issuer.get("ttl")
    if ttl in (None, ""):
        report.error(path + ".ttl", "missing", "give the certificate lifetime, e.g. `ttl: 2160h` (90 days)")
    elif not ((_is_int(ttl) and ttl > 0) or (isinstance(ttl, str) and _TTL.match(ttl) and ttl.strip("0smhd") != "")):
        report.error(path + ".ttl", "%s is not a duration" % _show(ttl),
                     "write seconds or a Vault duration such as 2160h, 90d")
    url = issuer.get("url")
    if url is not None:
        _url(report, path + ".url", url, what="Vault address")


def _validate_generated(report, path, issuer):
    length = issuer.get("length")
    if length is not None and not (_is_int(length) and length >= MIN_GENERATED_LENGTH):
        report.error(path + ".length", "%s is too short or not a number" % _show(length),
                     "use at least %d characters (32 or more for secrets a machine checks)" % MIN_GENERATED_LENGTH)
    alphabet = issuer.get("alphabet")
    if alphabet is not None and (not isinstance(alphabet, str) or len(set(alphabet)) < 2):
        report.error(path + ".alphabet", "must be a non-empty string of at least two distinct characters "
                     "(or an alphabet name)", "remove it for the default, or write e.g. `alphabet: hex`")


# --- store ------------------------------------------------------------------------------------

def _validate_store(report, path, store):
    kind = store.get("kind")
    if kind is None:
        report.error(path + ".kind", "missing", "set kind to one of: " + ", ".join(STORE_KINDS))
        return
    if kind not in STORE_KINDS:
        report.error(path + ".kind", "unknown store kind %s" % _show(kind), "use one of: " + ", ".join(STORE_KINDS))
        return
    report.unknown_fields(path, store, "store." + kind, "store")
    field = store.get("field")
    if field is not None:
        if not _is_str(field):
            report.error(path + ".field", "must be a non-empty string", "name the key that holds the value, e.g. api_key")
        elif field in RESERVED_FIELDS or field.startswith("previous_"):
            report.error(path + ".field", "%s is reserved for the rotation's own bookkeeping" % _show(field),
                         "name the value's key something else (not %s or previous_*)" % ", ".join(RESERVED_FIELDS))
    if kind == "vault_kv2":
        _url(report, path + ".url", store.get("url"), required=False, what="Vault/OpenBao address",
             secret_travels="the store token and the secret")
        mount = store.get("mount")
        if mount is not None and (not _is_str(mount) or mount.strip("/") != mount):
            report.error(path + ".mount", "%s is not a mount name" % _show(mount),
                         "write the KV v2 mount without slashes, e.g. `mount: secret`")
        secret_path = store.get("path")
        if _required_str(report, path + ".path", secret_path,
                         "give the secret's path in the mount, e.g. `path: api-credentials/payment-gateway-api`"):
            if secret_path.startswith("/") or secret_path.endswith("/"):
                report.error(path + ".path", "%s has a leading or trailing '/'" % _show(secret_path),
                             "write the path without them, e.g. api-credentials/payment-gateway-api")
            elif secret_path.split("/")[0] in ("data", "metadata"):
                report.error(path + ".path", "%s starts with the KV v2 API's %s/ segment" % (
                    _show(secret_path), secret_path.split("/")[0]),
                    "give the logical path without data/ or metadata/ (the store adds it)")
    else:
        secret_id = store.get("secret_id")
        if _required_str(report, path + ".secret_id", secret_id,
                         "name the secret, e.g. `secret_id: payment-gateway-api` (a name or an ARN)"):
            if not _SECRET_ID.match(secret_id):
                report.error(path + ".secret_id", "%s is not a Secrets Manager name or ARN" % _show(secret_id),
                             "use letters, digits and /_+=.@- (or the secret's full ARN)")


# --- consumers --------------------------------------------------------------------------------

def _host_ref(report, path, value, inventory, required=True, what="hosts"):
    if value in (None, "", []):
        if required:
            report.error(path, "missing", "name the inventory host or group that runs this consumer, e.g. `%s: web`" % what)
        return
    names = value if isinstance(value, list) else [value]
    for name in names:
        if not _is_str(name):
            report.error(path, "%s is not a host or group name" % _show(name),
                         "name one inventory host or group (or a list of them)")
            continue
        if any(ch in name for ch in ":&!*,") or name.startswith("~"):
            report.error(path, "%s is a host pattern" % _show(name),
                         "name inventory hosts or groups (a list of them for several), not a pattern")
            continue
        if not inventory.exists(name):
            report.error(path, "%s is neither a host nor a group of the inventory" % _show(name),
                         "add it to the inventory, or correct the name")


def _external_secret_store(report, path, consumer, store):
    """An ExternalSecret syncs what AWS Secrets Manager labels AWSCURRENT; the rotation keeps the
    new value AWSPENDING until every consumer verified it, so a force-sync would deploy the old
    value (and later overwrite a Secret written directly)."""
    if consumer.get("kind") != "kubernetes" or consumer.get("external_secret") in (None, ""):
        return
    if isinstance(store, dict) and store.get("kind") == "aws_secretsmanager":
        report.error(path + ".external_secret",
                     "an ExternalSecret reads AWSCURRENT, but with an aws_secretsmanager store the new value is "
                     "AWSPENDING until every consumer verified it",
                     "let the rotation write the Kubernetes Secret itself: `secret: NAME` without `external_secret:` "
                     "(and stop the ExternalSecret from managing that Secret)")


def _validate_consumer(report, path, consumer, inventory, credential, claims):
    name = consumer.get("name")
    if not _is_str(name):
        report.error(path + ".name", "missing or empty" if name in (None, "") else "must be a string",
                     "give the consumer a name, e.g. `name: web-app`")
    elif not _CONSUMER_NAME.match(name):
        report.error(path + ".name", "%s has characters that cannot be recorded (commas, spaces, ...)" % _show(name),
                     "use letters, digits and ._@- (the names go into the store's comma-separated metadata)")
    kind = consumer.get("kind")
    if kind not in CONSUMER_KINDS:
        report.error(path + ".kind", "missing" if kind is None else "unknown consumer kind %s" % _show(kind),
                     "use one of: " + ", ".join(CONSUMER_KINDS))
        return
    report.unknown_fields(path, consumer, "consumer." + kind)
    if kind == "systemd":
        _host_ref(report, path + ".hosts", consumer.get("hosts"), inventory)
        # a TLS consumer (cert_file) gets files, not an env var: see _validate_tls_consumers
        _env_file(report, path + ".env_file", consumer.get("env_file"), "cert_file" not in consumer)
        _env_var(report, path + ".env_var", consumer.get("env_var"), "cert_file" not in consumer)
        service = consumer.get("service")
        if _required_str(report, path + ".service", service,
                         "name the systemd unit restarted to pick up the value, e.g. `service: application.service`"):
            if not _UNIT.match(service):
                report.error(path + ".service", "%s is not a systemd unit name" % _show(service),
                             "write the unit's name, e.g. application.service")
        if _is_str(consumer.get("env_file")) and _is_str(consumer.get("env_var")):
            hosts = inventory.expand(consumer.get("hosts")) if isinstance(consumer.get("hosts"), (str, list)) else []
            for host in hosts:
                key = (host, consumer["env_file"], consumer["env_var"])
                claims.setdefault(key, []).append(path)
    elif kind == "kubernetes":
        _host_ref(report, path + ".cluster", consumer.get("cluster"), inventory, what="cluster")
        if isinstance(consumer.get("cluster"), list):
            report.error(path + ".cluster", "must be one inventory host", "name the host that carries the kubeconfig/context")
        namespace = consumer.get("namespace")
        if _required_str(report, path + ".namespace", namespace, "name the namespace, e.g. `namespace: payments`"):
            if not _DNS_LABEL.match(namespace):
                report.error(path + ".namespace", "%s is not a Kubernetes namespace name" % _show(namespace),
                             "use lower-case letters, digits and '-', at most 63 characters")
        if consumer.get("secret") in (None, "") and consumer.get("external_secret") in (None, ""):
            report.error(path, "neither secret nor external_secret is given",
                         "name the Kubernetes Secret to write (`secret:`) or the ExternalSecret to force-sync "
                         "(`external_secret:`)")
        for field in ("secret", "external_secret"):
            value = consumer.get(field)
            if value not in (None, "") and (not isinstance(value, str) or not _DNS_SUBDOMAIN.match(value)):
                report.error("%s.%s" % (path, field), "%s is not a Kubernetes object name" % _show(value),
                             "use lower-case letters, digits, '-' and '.'")
        deployments = consumer.get("deployments")
        if deployments in (None, []):
            report.error(path + ".deployments", "missing or empty",
                         "list the Deployments that use the Secret, e.g. `deployments: [mobile-backend]`")
        elif not isinstance(deployments, list):
            report.error(path + ".deployments", "must be a list of Deployment names",
                         "write e.g. `deployments: [%s]`" % (deployments if isinstance(deployments, str) else "app"))
        else:
            for index, dep in enumerate(deployments):
                if not isinstance(dep, str) or not _DNS_SUBDOMAIN.match(dep):
                    report.error("%s.deployments[%d]" % (path, index), "%s is not a Deployment name" % _show(dep),
                                 "use lower-case letters, digits, '-' and '.'")
    else:  # batch
        _host_ref(report, path + ".hosts", consumer.get("hosts"), inventory, required=False)
        _env_file(report, path + ".env_file", consumer.get("env_file"), False)
        _env_var(report, path + ".env_var", consumer.get("env_var"), False)
    verify = consumer.get("verify")
    if _mapping(report, path + ".verify", verify, False, "describe the health check: url, status, json"):
        _validate_verify(report, path + ".verify", verify)


def _env_file(report, path, value, required):
    if value in (None, ""):
        if required:
            report.error(path, "missing", "give the environment file the service reads, e.g. "
                         "`env_file: /etc/application/environment`")
        return
    if not isinstance(value, str) or not value.startswith("/") or "\n" in value:
        report.error(path, "%s is not an absolute path" % _show(value),
                     "write the full path, e.g. /etc/application/environment")


def _env_var(report, path, value, required):
    if value in (None, ""):
        if required:
            report.error(path, "missing", "name the variable that holds the value, e.g. `env_var: PAYMENT_API_KEY`")
        return
    if not isinstance(value, str) or not _ENV_VAR.match(value):
        report.error(path, "%s is not a valid environment variable name" % _show(value),
                     "use letters, digits and underscores, not starting with a digit (e.g. PAYMENT_API_KEY)")


def _validate_verify(report, path, verify):
    report.unknown_fields(path, verify, "verify")
    _url(report, path + ".url", verify.get("url"), what="health-check URL")
    _method(report, path + ".method", verify.get("method"), "GET")
    _statuses(report, path + ".status", verify.get("status"))
    checks = verify.get("json")
    if checks is not None:
        if not isinstance(checks, dict):
            report.error(path + ".json", "must be a mapping of JMESPath to expected value",
                         "write e.g. `json: {payment_gateway: connected}`")
        else:
            for key in checks:
                _jmespath(report, "%s.json[%s]" % (path, _show(key)), key, example="payment_gateway")


# --- webhook_rotate.yml: the sender block and the receivers' delivery logs -------------------
# Added fields (the contract allows them): `sender:` on a webhook_secret record (the sender's
# API, described like a rest issuer) and `deliveries:` on a systemd consumer (the receiver's
# delivery log). See docs/runbooks/webhook.md and ansible-doc credops.rotation.webhook_sender.

KNOWN["record"] = KNOWN["record"] + ("sender",)
KNOWN["consumer.systemd"] = KNOWN["consumer.systemd"] + ("deliveries",)
KNOWN.update({
    "sender": ("base_url", "auth", "webhook_id", "switch", "test", "signature", "headers",
               "validate_certs", "ca_path", "timeout", "retries"),
    "sender.switch": ("method", "path", "body", "form", "expect_status"),
    "sender.test": ("method", "path", "body", "expect_status", "json"),
    "sender.signature": ("header", "format", "payload_format"),
    "deliveries": ("url", "list_path", "matched_path"),
})
# Suffixes of the env vars webhook_rotate.yml writes beside a receiver's env_var.
WEBHOOK_ENV_SUFFIXES = ("_NEW", "_OLD")


def _carries(value, token):
    if isinstance(value, str):
        return token in value
    if isinstance(value, dict):
        return any(_carries(k, token) or _carries(v, token) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_carries(v, token) for v in value)
    return False


def _auth(report, path, auth, fix):
    """An HTTP API's admin credentials: {type: bearer|basic|header, ...} (rest issuers, senders)."""
    if not _mapping(report, path, auth, True, fix):
        return
    report.unknown_fields(path, auth, "auth", "auth")
    atype = auth.get("type")
    needed = {"bearer": ("token",), "basic": ("username", "password"), "header": ("name", "value")}
    if atype not in AUTH_TYPES:
        report.error(path + ".type", "missing" if atype is None else "unknown auth type %s" % _show(atype),
                     "use bearer (token), basic (username, password) or header (name, value)")
        return
    for field in needed[atype]:
        if field in SECRET_AUTH_FIELDS and not report.check_secrets:
            continue
        if not _is_str(auth.get(field)):
            report.error("%s.%s" % (path, field), "missing or empty (needed by auth type %s)" % atype,
                         "set it, from the environment or Ansible Vault rather than in clear")
    if atype == "header" and _is_str(auth.get("name")) and not _HEADER_NAME.match(auth["name"]):
        report.error(path + ".name", "%s is not an HTTP header name" % _show(auth["name"]),
                     "use a header name such as X-Admin-Key")


def _webhook_id(report, path, value):
    fix = "give the id of the sender's webhook endpoint that signs with this secret (or a list of ids)"
    if value in (None, "", []):
        report.error(path, "missing", fix)
        return
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, bool) or not (_is_str(item) or _is_int(item)):
            report.error(path, "%s is not a webhook id" % _show(item), fix)
            return
        if isinstance(item, str) and not _templated(item) and any(c in item for c in "/?#{} "):
            report.error(path, "%s has characters an id cannot have ('/', '?', '#', braces, spaces)"
                         % _show(item), "give the bare id; the path goes in switch.path / test.path")


def _validate_sender(report, path, sender):
    report.unknown_fields(path, sender, "sender")
    _url(report, path + ".base_url", sender.get("base_url"), what="sender API's base URL",
         secret_travels="the admin credentials and the new signing secret")
    _auth(report, path + ".auth", sender.get("auth"),
          "give the sender API's admin credentials, e.g. `auth: {type: bearer, token: \"{{ lookup("
          "'ansible.builtin.env', 'SENDER_ADMIN_TOKEN') }}\"}`")
    _webhook_id(report, path + ".webhook_id", sender.get("webhook_id"))
    switch = sender.get("switch")
    if _mapping(report, path + ".switch", switch, True,
                "describe the request that sets the signing secret, e.g. `switch: {method: PATCH, path: "
                "\"/v1/webhooks/{id}\", body: {secret: \"{secret}\"}}`"):
        spath = path + ".switch"
        report.unknown_fields(spath, switch, "sender.switch")
        _method(report, spath + ".method", switch.get("method"), "PATCH")
        _api_path(report, spath + ".path", switch.get("path"), ("id",), example="/v1/webhooks/{id}")
        if "body" in switch and "form" in switch:
            report.error(spath, "both body and form are given", "use body for JSON, form for form-encoded, not both")
        if "form" in switch and not isinstance(switch.get("form"), dict):
            report.error(spath + ".form", "must be a mapping of form fields", "write e.g. `form: {secret: \"{secret}\"}`")
        elif not _carries(switch.get("body"), "{secret}") and not _carries(switch.get("form"), "{secret}"):
            report.error(spath + ".body", "does not carry the new secret (no \"{secret}\" in body or form)",
                         "write where the secret goes, e.g. `body: {secret: \"{secret}\"}`")
        _statuses(report, spath + ".expect_status", switch.get("expect_status"))
    test = sender.get("test")
    if _mapping(report, path + ".test", test, False, "describe the request that makes the sender deliver a test event"):
        tpath = path + ".test"
        report.unknown_fields(tpath, test, "sender.test")
        _method(report, tpath + ".method", test.get("method"), "POST")
        _api_path(report, tpath + ".path", test.get("path"), ("id",), example="/v1/webhooks/{id}/test")
        _statuses(report, tpath + ".expect_status", test.get("expect_status"))
        checks = test.get("json")
        if checks is not None:
            if not isinstance(checks, dict):
                report.error(tpath + ".json", "must be a mapping of JMESPath to expected value",
                             "write e.g. `json: {delivered: true}`")
            else:
                for key in checks:
                    _jmespath(report, "%s.json[%s]" % (tpath, _show(key)), key, example="delivered")
    signature = sender.get("signature")
    if _mapping(report, path + ".signature", signature, False, "describe how deliveries are signed"):
        gpath = path + ".signature"
        report.unknown_fields(gpath, signature, "sender.signature")
        header = signature.get("header")
        if header is not None and (not _is_str(header) or not _HEADER_NAME.match(header)):
            report.error(gpath + ".header", "%s is not an HTTP header name" % _show(header),
                         "name the header that carries the signature, e.g. `header: X-Webhook-Signature`")
        for field, token, example in (("format", "{signature}", "t={timestamp},v1={signature}"),
                                      ("payload_format", "{payload}", "{timestamp}.{payload}")):
            value = signature.get(field)
            if value is not None and (not isinstance(value, str) or token not in value):
                report.error("%s.%s" % (gpath, field), "%s does not contain %s" % (_show(value), token),
                             "write e.g. `%s: \"%s\"`" % (field, example))
    for field in ("timeout", "retries"):
        value = sender.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            report.error("%s.%s" % (path, field), "%s is not a non-negative number" % _show(value),
                         "write e.g. `%s: %s`" % (field, 10 if field == "timeout" else 3))


def _validate_deliveries(report, path, deliveries):
    if not _mapping(report, path, deliveries, False, "describe the receiver's delivery log: url, list_path, matched_path"):
        return
    report.unknown_fields(path, deliveries, "deliveries")
    _url(report, path + ".url", deliveries.get("url"), what="delivery-log URL")
    _jmespath(report, path + ".list_path", deliveries.get("list_path"), required=False, example="deliveries")
    _jmespath(report, path + ".matched_path", deliveries.get("matched_path"), required=False, example="matched")


def _validate_webhook(report, path, record, ctype, inventory, claims):
    """The webhook_rotate.yml fields of one record (nothing to do for records without them)."""
    consumers = record.get("consumers") if isinstance(record.get("consumers"), list) else []
    if "sender" in record:
        sender = record.get("sender")
        if ctype is not None and ctype != "webhook_secret":
            report.error(path + ".sender", "only a webhook_secret has a sender (this is a %s)" % ctype,
                         "remove the sender block, or set type: webhook_secret")
        elif _mapping(report, path + ".sender", sender, False,
                      "describe the sender's API: base_url, auth, webhook_id, switch, test"):
            _validate_sender(report, path + ".sender", sender)
            # the handshake writes <env_var>_NEW / <env_var>_OLD beside each receiver's env_var
            for index, consumer in enumerate(consumers):
                if not isinstance(consumer, dict) or consumer.get("kind") != "systemd":
                    continue
                if not (_is_str(consumer.get("env_file")) and _is_str(consumer.get("env_var"))):
                    continue
                hosts = consumer.get("hosts")
                for host in inventory.expand(hosts) if isinstance(hosts, (str, list)) else []:
                    for suffix in WEBHOOK_ENV_SUFFIXES:
                        key = (host, consumer["env_file"], consumer["env_var"] + suffix)
                        claims.setdefault(key, []).append("%s.consumers[%d]" % (path, index))
    for index, consumer in enumerate(consumers):
        if isinstance(consumer, dict) and "deliveries" in consumer:
            _validate_deliveries(report, "%s.consumers[%d].deliveries" % (path, index), consumer.get("deliveries"))


# --- database and AWS rotation: id_env_var on systemd consumers, alternating postgres roles -----
# Added fields (the contract allows them): `id_env_var:` on a systemd consumer (the variable that
# gets the key id, written beside env_var: AWS_ACCESS_KEY_ID for an aws_iam key, the login role
# for alternating postgres roles) and `roles:` on a postgres issuer (two login roles with the same
# grants, instead of `role`). See docs/runbooks/aws.md and docs/runbooks/database.md.

KNOWN["consumer.systemd"] = KNOWN["consumer.systemd"] + ("id_env_var",)
_PG_ROLE_MAX = 63  # NAMEDATALEN - 1 bytes


def _key_ids_fit_env(issuer):
    """None when the issuer gives every value an id a consumer can use, else why not."""
    kind = issuer.get("kind") if isinstance(issuer, dict) else None
    if kind == "generated":
        return "a generated value has no key id"
    if kind == "rest":
        create = issuer.get("create")
        if not (isinstance(create, dict) and create.get("id_path")):
            return "issuer.create has no id_path, so the new value has no key id"
    if kind == "postgres" and "roles" not in issuer:
        return ("the single-role procedure's key ids are '<role>@<time>', not a user name (the consumer's user "
                "is issuer.role); id_env_var is for alternating roles (issuer.roles)")
    return None


def _validate_postgres_roles(report, path, issuer, store):
    roles = issuer.get("roles")
    fix = "name two login roles with the same grants, e.g. `roles: [orders_app_a, orders_app_b]`"
    if "role" in issuer:
        report.error(path + ".role", "is set together with roles",
                     "give role for the single-role procedure or roles for the alternating one, not both")
    if not isinstance(roles, list) or len(roles) != 2:
        report.error(path + ".roles", "must be a list of exactly two roles, got %s" % _show(roles), fix)
        return
    for index, role in enumerate(roles):
        if not _is_str(role) or len(role.encode("utf-8")) > _PG_ROLE_MAX:
            report.error("%s.roles[%d]" % (path, index), "%s is not a PostgreSQL role name" % _show(role), fix)
            return
    if roles[0] == roles[1]:
        report.error(path + ".roles", "names %s twice" % _show(roles[0]), fix)
    if isinstance(store, dict) and store.get("kind") == "aws_secretsmanager":
        report.error(path + ".roles", "alternating roles reuse their key ids (the role names), and store kind "
                     "aws_secretsmanager derives each version's id from the key id, so a later rotation would "
                     "collide with an old version",
                     "keep this credential in a vault_kv2 store, or use the single-role procedure (issuer.role)")


def _validate_ids_and_roles(report, path, record, inventory, claims):
    issuer = record.get("issuer") if isinstance(record.get("issuer"), dict) else {}
    if issuer.get("kind") == "postgres" and "roles" in issuer:
        _validate_postgres_roles(report, path + ".issuer", issuer, record.get("store"))
    consumers = record.get("consumers") if isinstance(record.get("consumers"), list) else []
    for index, consumer in enumerate(consumers):
        if not isinstance(consumer, dict) or consumer.get("kind") != "systemd" or "id_env_var" not in consumer:
            continue
        cpath = "%s.consumers[%d]" % (path, index)
        value = consumer.get("id_env_var")
        if not _is_str(value) or not _ENV_VAR.match(value):
            report.error(cpath + ".id_env_var", "%s is not a valid environment variable name" % _show(value),
                         "name the variable that gets the key id, e.g. `id_env_var: AWS_ACCESS_KEY_ID` "
                         "(letters, digits and underscores, not starting with a digit)")
            continue
        if value == consumer.get("env_var"):
            report.error(cpath + ".id_env_var", "%s is env_var too" % _show(value),
                         "give the key id its own variable, e.g. AWS_ACCESS_KEY_ID beside AWS_SECRET_ACCESS_KEY")
            continue
        why = _key_ids_fit_env(issuer) if issuer else None
        if why:
            report.error(cpath + ".id_env_var", why, "remove id_env_var, or use an issuer whose values have ids")
        if _is_str(consumer.get("env_file")):
            hosts = inventory.expand(consumer.get("hosts")) if isinstance(consumer.get("hosts"), (str, list)) else []
            for host in hosts:
                claims.setdefault((host, consumer["env_file"], value), []).append(cpath)


def _check_claims(report, claims):
    """Two credentials writing the same variable of the same file on the same host overwrite each other."""
    conflicts = [(key, paths) for key, paths in claims.items() if len(paths) > 1]
    for (host, env_file, env_var), paths in sorted(conflicts):
        owners = set(p.split(".consumers[")[0] for p in paths)
        if len(owners) > 1:
            others = ", ".join(paths[:-1])
            report.error(paths[-1] + ".env_var",
                         "%s in %s on host %s is also written by %s" % (env_var, env_file, host, others),
                         "give each credential its own variable (or its own file)")


# ---------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------

def resolve(value, path="", problems=None):
    """A plain copy of (possibly lazily templated) inventory data, each value fetched once.

    Ansible templates inventory values when they are read; a value it cannot template (an
    undefined variable, a failing lookup) becomes None here and ``(field path, exception)`` is
    appended to ``problems``, instead of one exception hiding every other error.
    """
    problems = [] if problems is None else problems
    if isinstance(value, dict):
        out = {}
        for key in list(value.keys()):
            sub = "%s.%s" % (path, key) if path else str(key)
            try:
                item = value[key]
            except Exception as exc:  # AnsibleUndefinedVariable, lookup errors, ...
                problems.append((sub, exc))
                out[key] = None
                continue
            out[key] = resolve(item, sub, problems)
        return out
    if isinstance(value, (list, tuple)):
        out = []
        for index in range(len(value)):
            sub = "%s[%d]" % (path, index)
            try:
                item = value[index]
            except Exception as exc:
                problems.append((sub, exc))
                out.append(None)
                continue
            out.append(resolve(item, sub, problems))
        return out
    return value


def first_line(exc):
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(text).strip().splitlines()[0]


_SCALARS = (str, int, float, bool, type(None), datetime.date)


def _plain(value):
    """A deep plain copy (dict/list/scalars), whatever mapping/sequence types came in."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return copy.copy(value)


def normalize(name, record):
    """One record with the contract's defaults filled in (a new dict; the input is not changed).

    Adds ``name``; risk standard; vault_kv2 store.field value and store.mount secret
    (aws_secretsmanager without field: the whole SecretString is the value);
    rest issuer methods POST/DELETE/GET and test.format "{secret}"; postgres port 5432;
    expect_status/verify.status as lists (verify.status default [200]); consumers default [].
    """
    out = _plain(record or {})
    out["name"] = name
    if out.get("last_rotated") not in (None, ""):
        try:
            out["last_rotated"] = _policy.format_time(out["last_rotated"])
        except ValueError:
            pass  # validation reports it
    if out.get("risk") in (None, ""):
        out["risk"] = _policy.DEFAULT_RISK
    issuer = out.get("issuer")
    if isinstance(issuer, dict):
        if issuer.get("kind") == "rest":
            for section, method in (("create", "POST"), ("revoke", "DELETE"), ("test", "GET"), ("usage", "GET")):
                part = issuer.get(section)
                if isinstance(part, dict):
                    part["method"] = str(part.get("method") or method).upper()
                    if _is_int(part.get("expect_status")):
                        part["expect_status"] = [part["expect_status"]]
            if isinstance(issuer.get("test"), dict):
                issuer["test"].setdefault("format", "{secret}")
        elif issuer.get("kind") == "postgres":
            issuer.setdefault("port", 5432)
    store = out.get("store")
    if isinstance(store, dict) and store.get("kind") == "vault_kv2":
        # aws_secretsmanager: no field means the whole SecretString is the value
        store.setdefault("field", "value")
        store.setdefault("mount", "secret")
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


# ---------------------------------------------------------------------------------------------
# Dependency map
# ---------------------------------------------------------------------------------------------

def consumer_hosts(consumer, inventory):
    """The inventory hosts of one consumer (kubernetes: its cluster entry)."""
    if consumer.get("kind") == "kubernetes":
        return inventory.expand(consumer.get("cluster"))
    return inventory.expand(consumer.get("hosts"))


def dependency_map(credentials, groups=None, hosts=None):
    """credential -> consumers -> hosts (groups expanded), and host -> what it holds.

    Returns::

        {"credentials": {NAME: {"type": ..., "consumers": [{"name", "kind", "hosts": [...],
                                  + env_file/env_var/service | cluster/namespace/secret/
                                    external_secret/deployments}], "hosts": [...]}},
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
            fields = {"systemd": ("env_file", "env_var", "service"),
                      "kubernetes": ("cluster", "namespace", "secret", "external_secret", "deployments"),
                      "batch": ("env_file", "env_var")}.get(kind, ())
            for field in fields:
                if consumer.get(field) not in (None, ""):
                    item[field] = _plain(consumer.get(field))
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


# ---------------------------------------------------------------------------------------------
# Drift: what discover_consumers found against what the map lists
# ---------------------------------------------------------------------------------------------

def env_var_names(credentials):
    """Every env_var the map names (systemd and batch consumers), sorted."""
    names = set()
    for record in (credentials or {}).values():
        for consumer in (record or {}).get("consumers") or []:
            if isinstance(consumer, dict) and _is_str(consumer.get("env_var")) and _ENV_VAR.match(consumer["env_var"]):
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
        if _ENV_VAR.match(name):
            found.setdefault((name, path), set()).update(loaders.get(path, ()))
    for unit_file, name in _grep_lines(unit_env_matches):
        if _ENV_VAR.match(name):
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


# --- certificates: systemd consumers that serve TLS ---------------------------------------------
# Added fields (the contract allows them): on a systemd consumer of a `certificate` credential,
# `cert_file` (the certificate and its chain), `key_file` (the private key, mode 0600), optional
# `ca_file` (the CA chain) and `reload: true` (reload the service instead of restarting it).
# See docs/runbooks/certificates.md.

KNOWN["consumer.systemd"] = KNOWN["consumer.systemd"] + ("cert_file", "key_file", "ca_file", "reload")
TLS_FILE_FIELDS = ("cert_file", "key_file", "ca_file")


def _validate_tls_consumers(report, path, record, ctype):
    consumers = record.get("consumers")
    if not isinstance(consumers, list):
        return
    for index, consumer in enumerate(consumers):
        if not isinstance(consumer, dict) or consumer.get("kind") != "systemd":
            continue
        cpath = "%s.consumers[%d]" % (path, index)
        tls = [f for f in TLS_FILE_FIELDS if f in consumer]
        if ctype == "certificate" and "cert_file" not in consumer:
            report.warn(cpath + ".cert_file", "not set: the private key goes into env_var as one line and "
                        "no certificate is deployed; name the files the service reads (cert_file, key_file)")
            continue
        if not tls and "reload" not in consumer:
            continue
        if ctype != "certificate":
            report.error(cpath + "." + (tls[0] if tls else "reload"),
                         "only a certificate credential is deployed as TLS files (this one is %s)" % _show(ctype),
                         "drop cert_file/key_file/ca_file/reload, or set `type: certificate`")
            continue
        if "key_file" not in consumer:
            report.error(cpath + ".key_file", "missing (needed with cert_file)",
                         "name the file that gets the private key, e.g. `key_file: /etc/app/tls.key`")
        seen = {}
        for field in tls:
            value = consumer.get(field)
            if not isinstance(value, str) or not value.startswith("/") or "\n" in value or value.endswith("/"):
                report.error("%s.%s" % (cpath, field), "%s is not an absolute file path" % _show(value),
                             "write the full path of the file, e.g. /etc/app/tls.crt")
            elif value in seen:
                report.error("%s.%s" % (cpath, field), "%s is also the %s" % (_show(value), seen[value]),
                             "give the certificate, the key and the CA chain a file each")
            else:
                seen[value] = field
        if "reload" in consumer and not isinstance(consumer.get("reload"), bool):
            report.error(cpath + ".reload", "%s is not true or false" % _show(consumer.get("reload")),
                         "write `reload: true` to reload the service instead of restarting it")
