# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Durable copies of the audit trail, beside the JSON-lines file: syslog/journald and HTTP.

Under AWX/AAP the job's working directory goes with its container, and the file trail with it.
``rotation_audit_sinks`` (a list, in the inventory) sends every entry to each sink as well:

- ``{type: syslog}``: one syslog message per entry, as the runbook's ``logger`` does: to the
  local socket ``/dev/log`` (journald or rsyslog), or ``address`` (a socket path, or
  ``host:port`` over UDP); ``facility`` (default ``authpriv``), ``tag`` (default
  ``credops-rotation``).
- ``{type: http, url}``: one JSON POST per entry to a log collector; ``headers`` (e.g. an
  ``Authorization`` from a lookup; never shown), ``timeout`` (seconds, default 5),
  ``validate_certs`` (default true), ``ca_path``.

Every sink may set ``required: true``: a failed delivery then fails the task. By default it is
a warning: the file entry is written first, and an unreachable collector never stops a
revocation. Entries carry no secret value (see _audit.make_entry); sink errors name the sink by
type and host only (no path, query or credentials of its URL, no header).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import logging
import logging.handlers

try:  # Python 3
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover
    from urlparse import urlsplit

FACILITIES = ("auth", "authpriv", "daemon", "user", "local0", "local1", "local2", "local3", "local4",
              "local5", "local6", "local7")
FIELDS = {
    "syslog": ("type", "address", "facility", "tag", "required"),
    "http": ("type", "url", "headers", "timeout", "validate_certs", "ca_path", "required"),
}


def problems(sinks, name="rotation_audit_sinks"):
    """Error strings for a bad ``rotation_audit_sinks`` value (empty when valid), each naming the field."""
    if sinks is None:
        return []
    if not isinstance(sinks, list):
        return ["%s: must be a list of sinks ({type: syslog} or {type: http, url: ...})" % name]
    errors = []
    for index, sink in enumerate(sinks):
        where = "%s[%d]" % (name, index)
        if not isinstance(sink, dict):
            errors.append("%s: must be a mapping with a type (syslog or http)" % where)
            continue
        kind = sink.get("type")
        if kind not in FIELDS:
            errors.append("%s.type: %r is not a sink type (syslog, http)" % (where, kind))
            continue
        errors.extend("%s.%s: unknown field for a %s sink (known: %s)" % (where, field, kind, ", ".join(FIELDS[kind]))
                      for field in sorted(set(sink) - set(FIELDS[kind])))
        if kind == "syslog":
            if sink.get("facility", "authpriv") not in FACILITIES:
                errors.append("%s.facility: %r is not one of %s" % (where, sink.get("facility"), ", ".join(FACILITIES)))
            if "address" in sink and _syslog_address(sink["address"]) is None:
                errors.append("%s.address: give a socket path (/dev/log) or host:port" % where)
        else:
            parts = urlsplit(str(sink.get("url") or ""))
            if parts.scheme not in ("http", "https") or not parts.hostname:
                errors.append("%s.url: an http:// or https:// URL is required" % where)
            if "headers" in sink and not isinstance(sink["headers"], dict):
                errors.append("%s.headers: must be a mapping of header names to values" % where)
            try:
                if float(sink.get("timeout", 5)) <= 0:
                    raise ValueError()
            except (TypeError, ValueError):
                errors.append("%s.timeout: must be a positive number of seconds" % where)
    return errors


def describe(sink):
    """How a message names a sink: its type and host, nothing a URL or header may hide."""
    if sink.get("type") == "http":
        parts = urlsplit(str(sink.get("url") or ""))
        return "http sink %s://%s" % (parts.scheme, parts.hostname or "?")
    return "syslog sink %s" % (sink.get("address") or "/dev/log")


def _syslog_address(address):
    if isinstance(address, str) and address.startswith("/"):
        return address
    host, sep, port = str(address).rpartition(":")
    if sep and host and port.isdigit():
        return (host, int(port))
    return None


class _SysLogHandler(logging.handlers.SysLogHandler):
    """The standard library's syslog client (what ``logger`` speaks), with a failed send raised
    to the caller instead of printed to stderr."""

    def handleError(self, record):
        raise  # pylint: disable=misplaced-bare-raise  # called by emit() inside its except block


def send_syslog(sink, entry):
    handler = _SysLogHandler(address=_syslog_address(sink.get("address") or "/dev/log"),
                             facility=logging.handlers.SysLogHandler.facility_names[sink.get("facility", "authpriv")])
    try:
        handler.ident = "%s: " % sink.get("tag", "credops-rotation")
        level = logging.WARNING if entry.get("event") in ("failed", "rolled_back", "revoke_blocked") else logging.INFO
        handler.emit(logging.LogRecord("credops.rotation.audit", level, __file__, 0,
                                       json.dumps(entry, sort_keys=True), None, None))
    finally:
        handler.close()


def send_http(sink, entry):
    from ansible.module_utils.urls import open_url  # the controller's own HTTP client
    headers = {"Content-Type": "application/json"}
    headers.update(dict((str(k), str(v)) for k, v in (sink.get("headers") or {}).items()))
    response = open_url(sink["url"], data=json.dumps(entry, sort_keys=True), headers=headers, method="POST",
                        timeout=float(sink.get("timeout", 5)), validate_certs=bool(sink.get("validate_certs", True)),
                        ca_path=sink.get("ca_path"), follow_redirects="none")
    response.read()


SENDERS = {"syslog": send_syslog, "http": send_http}


def deliver(sinks, entry):
    """Send ``entry`` to every sink. Returns (warnings, errors): messages for failed optional
    sinks and for failed required ones."""
    warnings, errors = [], []
    for sink in sinks or []:
        try:
            SENDERS[sink["type"]](sink, entry)
        except Exception as exc:  # any transport error: named by its type only, never its text
            message = "audit entry %s/%s not delivered to the %s (%s)" % (
                entry.get("credential"), entry.get("event"), describe(sink), _reason(exc))
            (errors if sink.get("required") else warnings).append(message)
    return warnings, errors


def _reason(exc):
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return "HTTP %d" % code
    return type(exc).__name__
