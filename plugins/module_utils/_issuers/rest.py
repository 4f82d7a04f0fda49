# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kind: rest: any HTTP key-management API, described in the inventory, not coded.

Every call goes through the described-HTTP-API client ``_clients/http_api.HttpApi`` (shared
with the webhook sender), which sends through ``_http.request`` (retries with backoff on
connection errors, 429 and 5xx, honouring Retry-After). Response bodies are never put into
messages: the create response holds the new secret. JMESPath expressions are compiled once, when the issuer is
built, so a malformed one fails in preflight.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.credops.rotation.plugins.module_utils._clients.http_api import (
    AUTH_FIELDS, HAS_JMESPATH, PLACEHOLDER_RE, HttpApi, auth_headers, compile_jmespath, status_kind,
    status_message, status_ok)
from ansible_collections.credops.rotation.plugins.module_utils._http import NotResent, connection_errors
from ansible_collections.credops.rotation.plugins.module_utils._issuers._base import Issuer
from ansible_collections.credops.rotation.plugins.module_utils._time import format_time

_CALL = dict(method=dict(type="str"), path=dict(type="str"))

ARGSPEC = dict(
    base_url=dict(type="str"),
    auth=dict(type="dict", options=dict(
        type=dict(type="str", choices=["bearer", "basic", "header", "none"]),
        token=dict(type="str", no_log=True),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        name=dict(type="str"),
        value=dict(type="str", no_log=True),
    )),
    create=dict(type="dict", options=dict(
        _CALL,
        body=dict(type="raw"),
        form=dict(type="dict"),
        expect_status=dict(type="list", elements="int"),
        secret_path=dict(type="str", no_log=False),
        id_path=dict(type="str"),
    )),
    revoke=dict(type="dict", options=dict(
        _CALL,
        body=dict(type="raw"),
        expect_status=dict(type="list", elements="int"),
    )),
    get=dict(type="dict", options=dict(
        _CALL,
        expect_status=dict(type="list", elements="int"),
        active_path=dict(type="str"),
    )),
    test=dict(type="dict", options=dict(
        _CALL,
        header=dict(type="str"),
        format=dict(type="str"),
    )),
    usage=dict(type="dict", options=dict(
        _CALL,
        events_path=dict(type="str"),
        time_path=dict(type="str"),
        source_path=dict(type="str"),
    )),
)

# Which {placeholders} each call's path may use.
_PLACEHOLDERS = {"create": (), "revoke": ("id",), "get": ("id",), "test": (), "usage": ("id", "since")}
# Key names shown in error messages: short identifiers only (a key could itself be a value).
_KEY_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,23}$")


def describe_shape(data):
    """What a JSON document looks like, without any of its values (for error messages)."""
    if isinstance(data, dict):
        names = sorted(k for k in data if isinstance(k, str) and _KEY_NAME_RE.match(k)
                       and sum(c.isdigit() for c in k) <= 3)
        hidden = len(data) - len(names)
        text = "a JSON object with the keys: %s" % (", ".join(names[:20]) or "(none)")
        if len(names) > 20 or hidden:
            text += " (and %d more)" % (max(0, len(names) - 20) + hidden)
        return text
    if isinstance(data, list):
        return "a JSON list of %d items" % len(data)
    if data is None:
        return "empty or not JSON"
    return "a JSON %s" % type(data).__name__


class RestIssuer(Issuer):
    kind = "rest"
    ARGSPEC = ARGSPEC
    TYPES = ("api_key", "oauth_client_secret", "service_account_token")
    REQUIRED = ("kind", "base_url", "auth", "create", "revoke")
    #: the request blocks (and the auth block): what is known there is all that is accepted
    CLOSED_BLOCKS = ("auth", "create", "revoke", "test", "usage")
    #: each request's required fields (preflight, the JSON Schema)
    BLOCK_REQUIRED = dict(auth=("type",), create=("path", "secret_path"), revoke=("path",),
                          test=("path", "header"), usage=("path", "events_path", "time_path"))
    _METHODS = (("create", "POST"), ("revoke", "DELETE"), ("test", "GET"), ("usage", "GET"))

    @classmethod
    def normalize(cls, block):
        """Request methods upper-case (POST/DELETE/GET by default), expect_status a list,
        test.format "{secret}" by default."""
        for section, method in cls._METHODS:
            part = block.get(section)
            if isinstance(part, dict):
                part["method"] = str(part.get("method") or method).upper()
                if isinstance(part.get("expect_status"), int) and not isinstance(part.get("expect_status"), bool):
                    part["expect_status"] = [part["expect_status"]]
        if isinstance(block.get("test"), dict):
            block["test"].setdefault("format", "{secret}")

    @classmethod
    def key_ids_unfit(cls, block):
        create = block.get("create")
        if not (isinstance(create, dict) and create.get("id_path")):
            return "issuer.create has no id_path, so the new value has no key id"
        return None

    @classmethod
    def preflight(cls, report, path, block, check):
        check.check_url(report, path + ".base_url", block.get("base_url"), what="API's base URL",
                        secret_travels="the admin credentials and the new keys")
        check.check_auth(report, path + ".auth", block.get("auth"), "give the admin credentials, e.g. `auth: "
                         "{type: bearer, token: \"{{ lookup('ansible.builtin.env', 'PROVIDER_ADMIN_TOKEN') }}\"}`")
        for section, required, fix in (
                ("create", True, "describe the request that makes a new key: method, path, secret_path, id_path"),
                ("revoke", True, "describe the request that revokes a key, e.g. `revoke: {method: DELETE, "
                                 "path: /v1/api-keys/{id}}`"),
                ("test", False, "describe the request that proves a key works"),
                ("usage", False, "describe the issuer's record of who used a key")):
            part = block.get(section)
            if check.check_mapping(report, "%s.%s" % (path, section), part, required, fix):
                report.unknown_fields("%s.%s" % (path, section), part, section, section)
                getattr(cls, "_preflight_" + section)(report, "%s.%s" % (path, section), part, block, check)

    @staticmethod
    def _preflight_create(report, cpath, create, block, check):
        check.check_method(report, cpath + ".method", create.get("method"), "POST")
        check.check_api_path(report, cpath + ".path", create.get("path"), ())
        if "body" in create and "form" in create:
            report.error(cpath, "both body and form are given", "use body for JSON, form for form-encoded, not both")
        if "form" in create and not isinstance(create.get("form"), dict):
            report.error(cpath + ".form", "must be a mapping of form fields", "write e.g. `form: {name: app}`")
        check.check_statuses(report, cpath + ".expect_status", create.get("expect_status"))
        check.check_jmespath(report, cpath + ".secret_path", create.get("secret_path"), example="api_key")
        needs_id = isinstance(block.get("revoke"), dict) or isinstance(block.get("usage"), dict)
        check.check_jmespath(report, cpath + ".id_path", create.get("id_path"), required=needs_id, example="id")

    @staticmethod
    def _preflight_revoke(report, rpath, revoke, block, check):
        check.check_method(report, rpath + ".method", revoke.get("method"), "DELETE")
        check.check_api_path(report, rpath + ".path", revoke.get("path"), ("id",), ("id",), example="/v1/api-keys/{id}")
        check.check_statuses(report, rpath + ".expect_status", revoke.get("expect_status"))

    @staticmethod
    def _preflight_test(report, tpath, test, block, check):
        check.check_method(report, tpath + ".method", test.get("method"), "GET")
        check.check_api_path(report, tpath + ".path", test.get("path"), ("id",), example="/v1/test")
        header = test.get("header")
        if not check.is_str(header) or not check.HEADER_NAME.match(header):
            report.error(tpath + ".header", "missing" if header in (None, "") else
                         "%s is not an HTTP header name" % check.show(header),
                         "name the header that carries the key, e.g. `header: Authorization`")
        fmt = test.get("format")
        if fmt is not None:
            if not isinstance(fmt, str) or "{secret}" not in fmt:
                report.error(tpath + ".format", "%s does not contain {secret}" % check.show(fmt),
                             "write where the key goes, e.g. `format: \"Bearer {secret}\"`")
            else:
                for placeholder in check.PLACEHOLDER.findall(fmt):
                    if placeholder != "secret":
                        report.error(tpath + ".format", "unknown placeholder {%s}" % placeholder,
                                     "only {secret} can be used here")
        check.check_statuses(report, tpath + ".expect_status", test.get("expect_status"))

    @staticmethod
    def _preflight_usage(report, upath, usage, block, check):
        check.check_method(report, upath + ".method", usage.get("method"), "GET")
        check.check_api_path(report, upath + ".path", usage.get("path"), ("id", "since"), ("id",),
                             example="/v1/audit-log?api_key_id={id}&since={since}")
        check.check_jmespath(report, upath + ".events_path", usage.get("events_path"), example="entries")
        check.check_jmespath(report, upath + ".time_path", usage.get("time_path"), example="timestamp")
        check.check_jmespath(report, upath + ".source_path", usage.get("source_path"), required=False,
                             example="source_ip")

    def __init__(self, config, credential):
        super(RestIssuer, self).__init__(config, credential)
        if not HAS_JMESPATH:
            raise self.error(missing_required_lib("jmespath"), step="preflight",
                             fix="install jmespath where the module runs (pip install jmespath).")
        self.sleep = time.sleep
        self.base_url = self.require("base_url").rstrip("/")
        if not re.match(r"^https?://", self.base_url):
            raise self.error("issuer.base_url must start with http:// or https://.",
                             step="preflight", fix="set issuer.base_url to the API's root URL.")
        self.retries = int(self.config.get("retries") if self.config.get("retries") is not None else 3)
        auth, self._secrets = self._build_auth(self.config.get("auth") or {})
        self.api = HttpApi(self.base_url, auth=auth, timeout=float(self.config.get("timeout") or 10),
                           retries=self.retries, validate_certs=self.config.get("validate_certs") is not False,
                           ca_path=self.config.get("ca_path"))
        for name in _PLACEHOLDERS:
            spec = self.config.get(name)
            if spec is not None:
                self._check_call(name, spec)
        self.require("create")
        self.require("path", self.config["create"].get("path"), "create.path")
        self._secret_expr = self._compile(
            self.require("secret_path", self.config["create"].get("secret_path"), "create.secret_path"),
            "create.secret_path")
        self._id_expr = self._compile(self.config["create"].get("id_path"), "create.id_path")
        self.has_ids = self._id_expr is not None
        self._active_expr = self._compile((self.config.get("get") or {}).get("active_path"), "get.active_path")
        usage = self.config.get("usage")
        if usage:
            self._events_expr = self._compile(
                self.require("events_path", usage.get("events_path"), "usage.events_path"), "usage.events_path")
            self._time_expr = self._compile(
                self.require("time_path", usage.get("time_path"), "usage.time_path"), "usage.time_path")
            self._source_expr = self._compile(usage.get("source_path"), "usage.source_path")

    # --- configuration -------------------------------------------------------------------
    def _build_auth(self, auth):
        kind = auth.get("type") or ("bearer" if auth.get("token") else "none")
        for field in AUTH_FIELDS.get(kind, ()):
            self.require(field, auth.get(field), "auth." + field)
        return auth_headers(kind, auth)

    def _check_call(self, name, spec):
        path = spec.get("path")
        if path is None:
            return
        allowed = _PLACEHOLDERS[name]
        for found in PLACEHOLDER_RE.findall(path):
            if found not in allowed:
                raise self.error(
                    "issuer.%s.path uses the placeholder {%s}; it may use only %s." % (
                        name, found, ", ".join("{%s}" % a for a in allowed) or "none"),
                    step="preflight", fix="correct issuer.%s.path." % name)

    def _compile(self, expression, field):
        try:
            return compile_jmespath(expression)
        except ValueError as exc:
            raise self.error("issuer.%s is not a valid JMESPath expression: %s" % (
                field, exc), step="preflight",
                fix="correct issuer.%s (see https://jmespath.org/specification.html)." % field)

    # --- HTTP ----------------------------------------------------------------------------
    def _call(self, step, name, values=None, headers=None, admin=True, default_method="GET",
              body=None, form=None, extra_secrets=()):
        spec = self.config.get(name) or {}
        template = self.require("path", spec.get("path"), name + ".path")
        try:
            path = self.api.path(template, values)
        except KeyError as exc:
            raise self.error("issuer.%s.path needs a value for {%s} and none was given." % (name, exc.args[0]),
                             step=step, fix="pass the key id (key_id) of the value to act on.")
        method = (spec.get("method") or default_method).upper()
        secrets = list(self._secrets) + list(extra_secrets)
        try:
            resp = self.api.call(method, path, headers=headers, admin=admin, body=body, form=form,
                                 sleep=self.sleep, warn=self.warnings.append)
        except NotResent as exc:
            raise self.error(
                "%s %s: the connection to the issuer at %s failed after the request was sent (%s); it was not "
                "sent again, since a second %s could make a second key." % (method, path, self.base_url, exc.reason, method),
                step=step, secrets=secrets,
                fix="the issuer may have made a key that no store holds: look for one made just now at the issuer "
                    "and revoke it, then run again.")
        except connection_errors() as exc:
            reason = getattr(exc, "reason", None) or exc
            raise self.error(
                "%s %s: could not reach the issuer at %s (%s), after %d retries." % (
                    method, path, self.base_url, reason, self.retries),
                step=step, secrets=secrets,
                fix="check issuer.base_url, that the service is up and reachable from here, "
                    "and the TLS options (validate_certs, ca_path).")
        return method, path, resp

    def _status_error(self, step, name, method, path, resp, expected):
        status = resp.status
        fix = {
            "auth": "check issuer.auth: the issuer refused the admin credential or it lacks permission for this call.",
            "not_found": "check issuer.base_url and issuer.%s.path." % name,
            "maybe_acted": ("the issuer failed (HTTP %d) and may still have acted on the %s, so it was not sent "
                            "again: look for a key made just now at the issuer and revoke it if no store holds it, "
                            "then run again." % (status, method)),
            "busy": ("the issuer is rate-limiting or failing (still HTTP %d after %d retries); try again later, "
                     "or raise retries." % (status, self.retries)),
            "rejected": "the issuer rejected the request: check issuer.%s (method, path, body)." % name,
            "unexpected": "if HTTP %d means success for this API, add it to issuer.%s.expect_status." % (status, name),
        }[status_kind(status, method)]
        return self.error(status_message(method, path, status, expected), step=step, fix=fix)

    _ok = staticmethod(status_ok)

    # --- the interface ---------------------------------------------------------------------
    def create(self):
        spec = self.config["create"]
        form = spec.get("form")
        body = None if form is not None else spec.get("body")
        method, path, resp = self._call("issue", "create", default_method="POST", body=body, form=form)
        expect = spec.get("expect_status")
        if not self._ok(resp.status, expect):
            raise self._status_error("issue", "create", method, path, resp, expect or "2xx")
        data = resp.json()
        where = "the response of %s %s (HTTP %d)" % (method, path, resp.status)
        secret = self._extract(self._secret_expr, data, "create.secret_path", where)
        if isinstance(secret, (int, float)) and not isinstance(secret, bool):
            secret = str(secret)
        if not isinstance(secret, str) or not secret:
            raise self.error("issuer.create.secret_path selects a %s in %s, not a non-empty string." % (
                type(secret).__name__, where), step="issue", fix=self._lost_key_fix("create.secret_path"))
        key_id = None
        if self._id_expr is not None:
            key_id = self._extract(self._id_expr, data, "create.id_path", where, secrets=[secret])
            if isinstance(key_id, (dict, list)):
                raise self.error("issuer.create.id_path selects a %s in %s, not a single id." % (
                    type(key_id).__name__, where), step="issue", fix=self._lost_key_fix("create.id_path"))
            key_id = str(key_id)
        return dict(id=key_id, secret=secret, info=dict(http_status=resp.status))

    def _lost_key_fix(self, field):
        return ("correct issuer.%s to a JMESPath that selects it in the create response. The issuer has "
                "probably created a key already: find it at the issuer and revoke it." % field)

    def _extract(self, expr, data, field, where, secrets=()):
        found = expr.search(data) if data is not None else None
        if found is None:
            raise self.error("issuer.%s '%s' found nothing in %s, which is %s (values not shown: "
                             "the response holds the new secret)." % (
                                 field, expr.expression, where, describe_shape(data)),
                             step="issue", fix=self._lost_key_fix(field), secrets=secrets)
        return found

    def revoke(self, key_id, secret=None, force=False):
        self.require("revoke")
        if not key_id:
            raise self.error("revoking needs the key id.", step="revoke",
                             fix="pass key_id (the store keeps it as key_id / previous_key_id).")
        spec = self.config["revoke"]
        method, path, resp = self._call("revoke", "revoke", {"id": key_id}, default_method="DELETE",
                                        body=spec.get("body"))
        if resp.status in (404, 410):
            return False
        expect = spec.get("expect_status")
        if not self._ok(resp.status, expect):
            raise self._status_error("revoke", "revoke", method, path, resp, expect or "2xx, 404 or 410")
        return True

    def exists(self, key_id):
        if not self.config.get("get") or not key_id:
            return None
        spec = self.config["get"]
        method, path, resp = self._call("check", "get", {"id": key_id})
        if resp.status in (404, 410):
            return False
        if not self._ok(resp.status, spec.get("expect_status")):
            raise self._status_error("check", "get", method, path, resp, spec.get("expect_status") or "2xx")
        if self._active_expr is None:
            return True
        return bool(self._active_expr.search(resp.json()))

    def test(self, secret, key_id=None):
        spec = self.config.get("test")
        if not spec:
            return None
        header = spec.get("header") or "Authorization"
        value = (spec.get("format") or "Bearer {secret}").replace("{secret}", secret)
        method, path, resp = self._call("test", "test", headers={header: value}, admin=False,
                                        extra_secrets=[secret])
        if 200 <= resp.status < 300:
            return True
        if resp.status in (401, 403):
            return False
        raise self.error("%s %s answered HTTP %d when testing a key; expected 2xx (accepted) or 401/403 "
                         "(rejected)." % (method, path, resp.status), step="test", secrets=[secret],
                         fix="check issuer.test (path, header, format) and that the issuer is healthy.")

    def usage(self, key_id, since):
        if not self.config.get("usage"):
            return None
        if not isinstance(since, str):
            since = format_time(since)
        method, path, resp = self._call("usage", "usage", {"id": key_id, "since": since})
        if not self._ok(resp.status, None):
            raise self._status_error("usage", "usage", method, path, resp, "2xx")
        data = resp.json()
        events = self._events_expr.search(data) if data is not None else None
        if events is None:
            return []
        if not isinstance(events, list):
            raise self.error("issuer.usage.events_path selects a %s in the response of %s %s, not a list." % (
                type(events).__name__, method, path), step="usage", fix="correct issuer.usage.events_path.")
        uses = []
        for index, event in enumerate(events):
            when = self._time_expr.search(event)
            if when is None:
                raise self.error("issuer.usage.time_path found nothing in use #%d of the response of %s %s, "
                                 "which is %s." % (index, method, path, describe_shape(event)),
                                 step="usage", fix="correct issuer.usage.time_path.")
            source = self._source_expr.search(event) if self._source_expr is not None else None
            uses.append(dict(time=str(when), source=None if source is None else str(source)))
        return uses
