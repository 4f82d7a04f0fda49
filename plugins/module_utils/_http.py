# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP for issuers and checks: Ansible's open_url with retries and honest errors.

Retries with exponential backoff and jitter on connection errors, 429 and 5xx, honouring
Retry-After (seconds or an HTTP date), bounded by ``retries``, and says so through ``warn``.
A request that is not idempotent (POST, PATCH: a create makes a new key each time it arrives)
is sent again only when the failure proves the server did not act on it: the connection was
refused or the name did not resolve, or the server answered 429 or 503. After a timeout, a
dropped connection or another 5xx it may have made a key, so it is not resent
(``NotResent``): a second POST would leave a live key that nobody stores or revokes.
TLS verification is on unless the caller turns it off; ``ca_path`` adds a CA bundle. Never
logs bodies or headers.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import random
import socket
import time
from email.utils import parsedate_to_datetime

from ansible.module_utils.six.moves.http_client import HTTPException
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import urlencode

RETRY_STATUSES = (429, 500, 502, 503, 504)
IDEMPOTENT_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")
# answers that say the server did not act on the request: safe to send any request again
NOT_PROCESSED_STATUSES = (429, 503)


class NotResent(URLError):
    """A request that is not idempotent failed in a way that leaves open whether the server
    acted on it (timeout, dropped connection); it was not sent again."""


# The shared argspec of every option that describes how to talk HTTP (doc fragment: http).
HTTP_ARGSPEC = dict(
    validate_certs=dict(type="bool", default=True),
    ca_path=dict(type="path"),
    timeout=dict(type="float", default=10),
    retries=dict(type="int", default=3),
)


class Response(object):
    def __init__(self, status, headers, body, url):
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url

    def json(self):
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def _retry_after(headers, default):
    value = headers.get("Retry-After") if headers else None
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return default


def open_url(url, method="GET", **kwargs):
    """Ansible's ``Request().open`` (what ``open_url`` calls, plus a ``context``), imported on first
    use. ansible.module_utils.urls costs about 0.1 s to import, and the preflight filters load this
    file only for its argument specs (AnsiballZ still packs urls into every module that sends
    requests: it follows nested imports)."""
    from ansible.module_utils.urls import Request
    return Request().open(method, url, **kwargs)


_TLS_CONTEXTS = {}


def tls_context(validate_certs=True, ca_path=None):
    """One TLS context per (validate_certs, ca_path) for the life of the process. open_url builds
    a new one for every request, and that loads the system's CA certificates each time (about
    0.04 s): before an emergency revocation, and on every poll of a verification."""
    key = (bool(validate_certs), ca_path)
    if key not in _TLS_CONTEXTS:
        from ansible.module_utils.urls import make_context
        _TLS_CONTEXTS[key] = make_context(cafile=ca_path, validate_certs=bool(validate_certs))
    return _TLS_CONTEXTS[key]


def connection_errors():
    """What open_url raises when a server could not be reached or answered nothing usable: the
    tuple to catch (``except connection_errors() as exc``), urls imported on first use."""
    from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
    return (URLError, OSError, HTTPException, UrlsConnectionError)


def _never_arrived(exc):
    """True when a connection error proves the request never reached the server."""
    return isinstance(getattr(exc, "reason", exc), (ConnectionRefusedError, socket.gaierror))


def _backoff(backoff, attempt, max_wait):
    """Exponential backoff with jitter (half fixed, half random), so that many clients turned
    away together do not all come back at the same moment."""
    base = min(max_wait, backoff * (2 ** (attempt - 1)))
    return base / 2 + random.uniform(0, base / 2)


def _where(method, url):
    """METHOD /path for a warning: no query (it may carry ids), no credentials, no host."""
    path = url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
    return "%s /%s" % (method, path)


def request(method, url, headers=None, json_body=None, form=None, timeout=10, retries=3,
            validate_certs=True, ca_path=None, backoff=0.5, max_wait=30, sleep=time.sleep, warn=None):
    """Send one request, retrying transient failures. Returns a Response for any HTTP status.

    Raises URLError/OSError only when the server could not be reached after every retry, and
    ``NotResent`` when a request that is not idempotent may have reached it. ``warn`` (a
    callable) hears of each retry.
    """
    idempotent = method.upper() in IDEMPOTENT_METHODS
    retry_statuses = RETRY_STATUSES if idempotent else NOT_PROCESSED_STATUSES
    headers = dict(headers or {})
    data = None
    if json_body is not None:
        data = json.dumps(json_body)
        headers.setdefault("Content-Type", "application/json")
    elif form is not None:
        data = urlencode(form, doseq=True)
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    headers.setdefault("Accept", "application/json")
    attempt = 0
    while True:
        attempt += 1
        try:
            resp = open_url(url, method=method, data=data, headers=headers, timeout=timeout,
                            validate_certs=validate_certs, ca_path=ca_path, context=tls_context(validate_certs, ca_path),
                            follow_redirects="safe", http_agent="credops.rotation")
            result = Response(resp.getcode(), dict(resp.headers), resp.read(), url)
        except HTTPError as exc:
            result = Response(exc.code, dict(exc.headers or {}), exc.read() if exc.fp else b"", url)
        except (URLError, OSError) as exc:
            if not idempotent and not _never_arrived(exc):
                raise NotResent(getattr(exc, "reason", None) or exc)
            if attempt > retries:
                raise
            wait = _backoff(backoff, attempt, max_wait)
            if warn:
                warn("%s: %s; retry %d of %d in %.1f s" % (_where(method, url), type(getattr(exc, "reason", exc)).__name__,
                                                           attempt, retries, wait))
            sleep(wait)
            continue
        if result.status in retry_statuses and attempt <= retries:
            after = _retry_after(result.headers, None)
            wait = min(max_wait, after if after is not None else _backoff(backoff, attempt, max_wait))
            if warn:
                warn("%s: HTTP %d; retry %d of %d in %.1f s" % (_where(method, url), result.status, attempt, retries, wait))
            sleep(wait)
            continue
        return result
