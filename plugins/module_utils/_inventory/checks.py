# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The field checks preflight is made of: the report (every problem at once, each named by
its field path, with its fix) and the checks several blocks share (URLs, HTTP requests,
JMESPath, an API's admin credentials). Messages never show a secret-bearing field's value."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import ArgumentValueError

try:
    import jmespath
    HAS_JMESPATH = True
except ImportError:  # pragma: no cover - reported as a validation error
    HAS_JMESPATH = False

from ansible_collections.credops.rotation.plugins.module_utils import _sender_spec
from ansible_collections.credops.rotation.plugins.module_utils._inventory.fields import ACCEPTED, AUTH_TYPES, HTTP_METHODS, KNOWN
from ansible_collections.credops.rotation.plugins.module_utils._consumers._base import ENV_VAR
from ansible_collections.credops.rotation.plugins.module_utils._inventory.model import is_int, is_str, show, templated


# Whether a sender call's body or form holds "{secret}" (runbook_fields takes it from here): the
# module webhook_sender's own check, from the light _sender_spec.
carries = _sender_spec.carries

# Secret-bearing fields: their values never appear in a message.
SECRET_AUTH_FIELDS = ("token", "password", "value")

HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_URL = re.compile(r"^(https?)://([^/\s?#]+)([^\s]*)$")
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")

# What an argument spec's type (and a list's elements) asks for, in a message.
_TYPE_WORDS = {"str": "a string", "path": "a path", "int": "a whole number", "float": "a number",
               "bool": "true or false", "list": "a list", "dict": "a mapping"}
_ELEMENT_WORDS = {"str": "strings", "path": "paths", "int": "whole numbers", "float": "numbers",
                  "bool": "true/false values", "dict": "mappings"}


class Report(object):
    """The errors and warnings of one preflight run."""

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


def check_url(report, path, value, required=True, what="URL", secret_travels=None):
    if value in (None, ""):
        if required:
            report.error(path, "missing", "give the %s, e.g. https://api.example.com" % what)
        return
    if not isinstance(value, str):
        report.error(path, "must be a string URL", "write it as https://host[:port][/path]")
        return
    if templated(value):
        return
    match = _URL.match(value.strip())
    if not match:
        report.error(path, "%s is not an http(s) URL" % show(value),
                     "write it as https://host[:port][/path]")
        return
    host = match.group(2).rsplit("@", 1)[-1]
    hostname = host.split(":")[0] if not host.startswith("[") else host.split("]")[0] + "]"
    if secret_travels and match.group(1) == "http" and hostname not in _LOOPBACK_HOSTS \
            and not hostname.startswith("127."):
        report.warn(path, "plain http: %s travels unencrypted" % secret_travels)


def check_method(report, path, value, default):
    if value is None:
        return
    if not isinstance(value, str) or value.upper() not in HTTP_METHODS:
        report.error(path, "unknown HTTP method %s" % show(value),
                     "use one of %s (default %s)" % (", ".join(HTTP_METHODS), default))


def check_api_path(report, path, value, allowed, required_placeholders=(), example="/v1/api-keys"):
    if value in (None, ""):
        report.error(path, "missing", "give the request path below base_url, e.g. %s" % example)
        return
    if not isinstance(value, str):
        report.error(path, "must be a string", "give the request path below base_url, e.g. %s" % example)
        return
    if not value.startswith("/"):
        report.error(path, "%s must start with '/'" % show(value),
                     "give the path below base_url, e.g. %s" % example)
    found = PLACEHOLDER.findall(value)
    for placeholder in found:
        if placeholder not in allowed:
            report.error(path, "unknown placeholder {%s}" % placeholder,
                         "only %s can be used here" % (", ".join("{%s}" % a for a in allowed) or "no placeholder"))
    for placeholder in required_placeholders:
        if placeholder not in found:
            report.error(path, "%s has no {%s}" % (show(value), placeholder),
                         "put {%s} where the key's %s goes, e.g. %s" % (placeholder, placeholder, example))


def check_jmespath(report, path, value, required=True, example="id"):
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
        report.error(path, "%s is not a valid JMESPath (%s)" % (show(value), detail),
                     "check the expression at https://jmespath.org, e.g. `%s`" % example)


def check_statuses(report, path, value):
    if value is None:
        return
    values = value if isinstance(value, list) else [value]
    if not values or not all(is_int(v) and 100 <= v <= 599 for v in values):
        report.error(path, "%s is not an HTTP status or a list of them" % show(value),
                     "write e.g. `200` or `[200, 201]`")


def check_mapping(report, path, value, required, fix):
    if value is None:
        if required:
            report.error(path, "missing", fix)
        return False
    if not isinstance(value, dict):
        report.error(path, "must be a mapping, got %s" % type(value).__name__, fix)
        return False
    return True


def required_str(report, path, value, fix):
    if not is_str(value):
        report.error(path, "missing or empty" if value in (None, "") else
                     "must be a string, got %s" % type(value).__name__, fix)
        return False
    return True


def check_auth(report, path, auth, fix):
    """An HTTP API's admin credentials: {type: bearer|basic|header, ...} (rest issuers, senders)."""
    if not check_mapping(report, path, auth, True, fix):
        return
    report.unknown_fields(path, auth, "auth", "auth")
    atype = auth.get("type")
    needed = {"bearer": ("token",), "basic": ("username", "password"), "header": ("name", "value")}
    if atype not in AUTH_TYPES:
        report.error(path + ".type", "missing" if atype is None else "unknown auth type %s" % show(atype),
                     "use bearer (token), basic (username, password) or header (name, value)")
        return
    for field in needed[atype]:
        if field in SECRET_AUTH_FIELDS and not report.check_secrets:
            continue
        if not is_str(auth.get(field)):
            report.error("%s.%s" % (path, field), "missing or empty (needed by auth type %s)" % atype,
                         "set it, from the environment or Ansible Vault rather than in clear")
    if atype == "header" and is_str(auth.get("name")) and not HEADER_NAME.match(auth["name"]):
        report.error(path + ".name", "%s is not an HTTP header name" % show(auth["name"]),
                     "use a header name such as X-Admin-Key")


def _reported(report, path):
    """Whether a check already reported an error on this field (or inside it)."""
    return any(error.startswith((path + ":", path + ".", path + "[")) for error in report.errors)


def _wanted(option):
    kind = option.get("type", "str")
    if kind == "list" and option.get("elements"):
        return "a list of " + _ELEMENT_WORDS.get(option["elements"], option["elements"])
    return _TYPE_WORDS.get(kind, kind)


def check_declared(report, path, mapping, spec):
    """The structural checks of an argument spec (type, elements, choices) on the fields of one
    block, where no specific check has reported on the field already.

    The issuer and store blocks go to the modules as they are, and a module checks them with
    its argument spec (``spec``: the block's options in ``fields.SPECS``) only once the run has
    started, the store step after the issue step: what it would refuse is refused here, before
    anything changes, in a message naming the credential and the field. The verdict is the
    modules' own (``ArgumentSpecValidator``, with the same conversions); the message is ours,
    and shows no value of a secret-bearing (``no_log``) field. In a sub-block (``options``) that is
    a mapping, its fields are checked in turn. Templated values and free-form (``raw``) fields
    are left alone.
    """
    for name, value in mapping.items():
        option = spec.get(name)
        field = "%s.%s" % (path, name)
        if option is None or value is None or option.get("type", "str") == "raw" or templated(value) \
                or _reported(report, field):
            continue
        declared = dict((key, option[key]) for key in ("type", "elements", "choices") if key in option)
        result = ArgumentSpecValidator({name: declared}).validate({name: value})
        if not result.error_messages:
            if option.get("options") and isinstance(value, dict):
                check_declared(report, field, value, option["options"])
            continue
        shown = "the value" if option.get("no_log") else show(value)
        if all(isinstance(error, ArgumentValueError) for error in result.errors.errors):
            report.error(field, "%s is not one of the choices" % shown,
                         "use one of: " + ", ".join(str(choice) for choice in option["choices"]))
        else:
            report.error(field, "%s is not %s" % (shown, _wanted(option)),
                         "give %s, as the modules' argument spec declares it" % _wanted(option))


# --- consumers: the checks several consumer kinds share (their own are in _consumers/<kind>.py) --

def host_ref(report, path, value, inventory, required=True, what="hosts"):
    if value in (None, "", []):
        if required:
            report.error(path, "missing", "name the inventory host or group that runs this consumer, e.g. `%s: web`" % what)
        return
    names = value if isinstance(value, list) else [value]
    for name in names:
        if not is_str(name):
            report.error(path, "%s is not a host or group name" % show(name),
                         "name one inventory host or group (or a list of them)")
            continue
        if any(ch in name for ch in ":&!*,") or name.startswith("~"):
            report.error(path, "%s is a host pattern" % show(name),
                         "name inventory hosts or groups (a list of them for several), not a pattern")
            continue
        if not inventory.exists(name):
            report.error(path, "%s is neither a host nor a group of the inventory" % show(name),
                         "add it to the inventory, or correct the name")


def env_file(report, path, value, required):
    if value in (None, ""):
        if required:
            report.error(path, "missing", "give the environment file the service reads, e.g. "
                         "`env_file: /etc/application/environment`")
        return
    if not isinstance(value, str) or not value.startswith("/") or "\n" in value:
        report.error(path, "%s is not an absolute path" % show(value),
                     "write the full path, e.g. /etc/application/environment")


def env_var(report, path, value, required):
    if value in (None, ""):
        if required:
            report.error(path, "missing", "name the variable that holds the value, e.g. `env_var: PAYMENT_API_KEY`")
        return
    if not isinstance(value, str) or not ENV_VAR.match(value):
        report.error(path, "%s is not a valid environment variable name" % show(value),
                     "use letters, digits and underscores, not starting with a digit (e.g. PAYMENT_API_KEY)")
