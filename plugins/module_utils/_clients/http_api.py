# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one client of a described HTTP API: an API the inventory describes (``base_url``,
``auth``, and calls of a method and a path with ``{placeholders}``, the statuses they expect,
JMESPath into their answers) rather than the collection codes. The rest issuer
(``_issuers/rest.py``) and the webhook sender (``_sender.py``) both drive one; each keeps
its own words for what went wrong (an issuer and a sender call for different fixes).

Every call goes through ``_http.request``, whose retry rules stand: a request that is not
idempotent (a create) is sent again only when the failure proves the server did not act on
it (refused, unresolved, 429, 503); otherwise ``_http.NotResent`` is raised.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import re
import time

from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.credops.rotation.plugins.module_utils._http import (
    IDEMPOTENT_METHODS, NOT_PROCESSED_STATUSES, request)

try:
    import jmespath
    from jmespath.exceptions import JMESPathError
    HAS_JMESPATH = True
except ImportError:
    jmespath = JMESPathError = None
    HAS_JMESPATH = False

#: the fields each auth type needs
AUTH_FIELDS = {"bearer": ("token",), "basic": ("username", "password"), "header": ("name", "value"),
               "none": ()}
PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render_path(template, values):
    """Fill {name} placeholders, each value URL-quoted (so an id cannot add path segments
    or query parameters). Raises KeyError for a placeholder without a value."""
    def fill(match):
        value = values[match.group(1)]
        if value is None:
            raise KeyError(match.group(1))
        return quote(str(value), safe="")
    return PLACEHOLDER_RE.sub(fill, template)


def auth_headers(kind, auth):
    """(headers, secret values) for the admin credentials ``auth`` of type ``kind`` (whose
    fields, AUTH_FIELDS[kind], the caller has checked are set). Any other type sends nothing."""
    if kind == "bearer":
        return {"Authorization": "Bearer " + auth["token"]}, [auth["token"]]
    if kind == "basic":
        raw = base64.b64encode(("%s:%s" % (auth["username"], auth["password"])).encode("utf-8")).decode("ascii")
        return {"Authorization": "Basic " + raw}, [auth["password"], raw]
    if kind == "header":
        return {auth["name"]: auth["value"]}, [auth["value"]]
    return {}, []


def compile_jmespath(expression):
    """``expression`` compiled (None stays None), so a malformed one fails before any call.
    Raises ValueError with the parser's reason on one line."""
    if expression is None:
        return None
    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        raise ValueError(" ".join(str(exc).split()))


def jmespath_search(expression, data):
    """What the JMESPath ``expression`` (a string) selects in ``data``, None when nothing."""
    return jmespath.search(expression, data)


def status_ok(status, expect):
    """Whether ``status`` means success: one of ``expect`` when given, else any 2xx."""
    return status in expect if expect else 200 <= status < 300


def status_kind(status, method):
    """What an unexpected answer means, for the caller's fix: ``auth`` (401, 403),
    ``not_found`` (404), ``maybe_acted`` (a 5xx to a request that is not idempotent and that
    was therefore not resent: the server may have acted on it), ``busy`` (429 or 5xx still,
    after the retries), ``rejected`` (another 4xx) or ``unexpected`` (anything else)."""
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status >= 500 and method not in IDEMPOTENT_METHODS and status not in NOT_PROCESSED_STATUSES:
        return "maybe_acted"
    if status == 429 or status >= 500:
        return "busy"
    if 400 <= status < 500:
        return "rejected"
    return "unexpected"


def status_message(method, path, status, expected):
    """The message of an answer that was not the one expected (never its body)."""
    return "%s %s answered HTTP %d, expected %s (the response body is not shown)." % (
        method, path, status, expected)


class HttpApi(object):
    """One described HTTP API: its ``base_url``, the ``headers`` every call sends, the admin
    ``auth`` headers, and the HTTP options of ``_http.request``."""

    def __init__(self, base_url, auth=None, headers=None, timeout=10, retries=3, validate_certs=True,
                 ca_path=None):
        self.base_url = base_url.rstrip("/")
        self.auth = dict(auth or {})
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.retries = retries
        self.validate_certs = validate_certs
        self.ca_path = ca_path

    @staticmethod
    def path(template, values=None):
        """``template`` with its placeholders filled (render_path), starting with a slash.
        Raises KeyError for a placeholder without a value."""
        path = render_path(template, values or {})
        return path if path.startswith("/") else "/" + path

    def call(self, method, path, headers=None, admin=True, body=None, form=None, sleep=time.sleep, warn=None):
        """Send ``method`` to ``path`` under base_url: the API's headers, the admin auth headers
        (unless ``admin`` is false), then ``headers``; ``body`` as JSON or ``form`` form-encoded.
        Returns the ``_http.Response`` whatever its status; raises ``_http.NotResent`` and the
        errors of ``_http.connection_errors()`` as ``_http.request`` does."""
        all_headers = dict(self.headers)
        if admin:
            all_headers.update(self.auth)
        all_headers.update(headers or {})
        return request(method, self.base_url + path, headers=all_headers, json_body=body, form=form,
                       timeout=self.timeout, retries=self.retries, validate_certs=self.validate_certs,
                       ca_path=self.ca_path, sleep=sleep, warn=warn)
