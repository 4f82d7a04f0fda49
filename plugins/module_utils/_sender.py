# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The webhook sender of a ``webhook_secret`` credential, and the probes of its receivers.

A webhook secret has two sides: the *sender* signs deliveries with it (a payment provider, a
Git host, an internal event bus) and the *receivers* (the credential's systemd consumers)
check the signatures. The dual-accept handshake of ``webhook_rotate.yml`` talks to both:

- ``Sender`` drives the sender's HTTP API, described in the credential's ``sender:`` block
  like a rest issuer (base_url, auth, and the ``switch`` / ``test`` calls): ``switch()`` sets
  the new signing secret on each webhook id, ``test()`` asks the sender for a test delivery.
- ``deliver()`` plays the sender towards one receiver: it signs a test payload with a given
  secret (``_webhook.sign``) and POSTs it, so a receiver can be shown to accept (2xx) or
  reject (401/403) a secret.
- ``read_deliveries()`` reads a receiver's delivery log (which of its secrets matched each
  delivery: ``current``, ``new``, ``old`` or ``none``), to prove that the sender's deliveries
  are signed with the new secret before the old one is dropped.

The sender's API is a described HTTP API, driven through ``_clients/http_api.HttpApi`` as the
rest issuer's is; every HTTP call goes through ``_http.request`` (retries, backoff, Retry-After). Response
bodies never reach a message; the secret, the admin credentials and the signature header
are scrubbed from every error.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import secrets as _secrets
import time

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.credops.rotation.plugins.module_utils import _sender_spec, _verify, _webhook
from ansible_collections.credops.rotation.plugins.module_utils._clients.http_api import (
    AUTH_FIELDS, HAS_JMESPATH, PLACEHOLDER_RE, HttpApi, jmespath_search, status_kind, status_message,
    status_ok)
from ansible_collections.credops.rotation.plugins.module_utils._clients.http_api import auth_headers as _auth_headers
from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError, scrub
from ansible_collections.credops.rotation.plugins.module_utils._http import connection_errors, request
from ansible_collections.credops.rotation.plugins.module_utils._poll import poll_until
from ansible_collections.credops.rotation.plugins.module_utils._sender_spec import SENDER_ARGSPEC, SIGNATURE_DEFAULTS

# What a receiver's delivery log calls its secrets (the env layout of webhook_rotate.yml):
# <VAR> -> current, <VAR>_NEW -> new, <VAR>_OLD -> old, no match -> none.
MATCH_LABELS = ("current", "new", "old", "none")
REJECTED = (401, 403)
TEST_EVENT_TYPE = "credops.rotation.test"


def _error(message, credential=None, step=None, fix=None, secrets=()):
    return RotationError(scrub(message, secrets), credential=credential, step=step, fix=fix)


def _reach_error(exc):
    reason = getattr(exc, "reason", None)
    return "%s: %s" % (type(exc).__name__, reason if reason is not None else exc)


def fill(value, values):
    """``{secret}`` / ``{id}`` placeholders filled in every string of a JSON-like value."""
    if isinstance(value, str):
        out = value
        for key, repl in values.items():
            out = out.replace("{%s}" % key, str(repl))
        return out
    if isinstance(value, dict):
        return dict((fill(k, values), fill(v, values)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [fill(v, values) for v in value]
    return value


def carries(value, placeholder):
    """Whether ``{placeholder}`` appears in some string of a JSON-like value."""
    return _sender_spec.carries(value, "{%s}" % placeholder)


def webhook_ids(value):
    """``webhook_id`` as a list of strings (one id or a list of them)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    ids = []
    for item in items:
        if isinstance(item, bool) or item is None or (isinstance(item, str) and not item.strip()):
            raise ValueError("webhook_id must be an id (string or number) or a non-empty list of them")
        if not isinstance(item, (str, int)):
            raise ValueError("webhook_id must be an id (string or number) or a non-empty list of them, "
                             "not a %s" % type(item).__name__)
        ids.append(str(item))
    if not ids:
        raise ValueError("webhook_id must not be an empty list")
    return ids


def validate_sender_config(config, credential=None):
    """A ``sender`` mapping checked against SENDER_ARGSPEC with defaults filled in. Raises
    RotationError (step preflight) naming every problem; never shows a value."""
    if not isinstance(config, dict):
        raise _error("the sender block must be a mapping, not %s" % type(config).__name__,
                     credential, "preflight",
                     fix="describe the sender's API in the credential's sender: block "
                         "(base_url, auth, webhook_id, switch).")
    validator = ArgumentSpecValidator(SENDER_ARGSPEC)
    result = validator.validate(dict(config))
    problems = list(result.error_messages)
    params = result.validated_parameters
    try:
        params["webhook_ids"] = webhook_ids(params.get("webhook_id"))
    except ValueError as exc:
        problems.append(str(exc))
    switch = params.get("switch") or {}
    if switch.get("body") is not None and switch.get("form") is not None:
        problems.append("sender.switch has both body and form; use one")
    if not carries(switch.get("body"), "secret") and not carries(switch.get("form"), "secret"):
        problems.append("sender.switch must carry the new secret: put \"{secret}\" in its body or form")
    for name in ("switch", "test"):
        part = params.get(name) or {}
        for found in PLACEHOLDER_RE.findall(part.get("path") or ""):
            if found != "id":
                problems.append("sender.%s.path uses {%s}; only {id} is known there" % (name, found))
    sig = dict(SIGNATURE_DEFAULTS)
    sig.update(dict((k, v) for k, v in (params.get("signature") or {}).items() if v is not None))
    params["signature"] = sig
    if "{signature}" not in (sig.get("format") or ""):
        problems.append("sender.signature.format must contain {signature}")
    if "{payload}" not in (sig.get("payload_format") or ""):
        problems.append("sender.signature.payload_format must contain {payload}")
    if not re.match(r"^https?://", params.get("base_url") or ""):
        problems.append("sender.base_url must start with http:// or https://")
    if problems:
        raise _error("invalid sender block: %s" % "; ".join(problems), credential, "preflight",
                     fix="fix the credential's sender block (see ansible-doc "
                         "credops.rotation.webhook_sender, option sender).")
    return params


def auth_headers(auth):
    """(headers, secret values) for the sender's admin credentials."""
    auth = auth or {}
    kind = auth.get("type") or "bearer"
    if kind not in AUTH_FIELDS or kind == "none":
        raise ValueError("unknown sender.auth.type %r" % (kind,))
    fields = AUTH_FIELDS[kind]
    if not all(auth.get(field) for field in fields):
        raise ValueError("%s %s (auth type %s)" % (
            " and ".join("sender.auth." + field for field in fields),
            "is missing" if len(fields) == 1 else "are needed", kind))
    return _auth_headers(kind, auth)


class Sender(object):
    """The sender's API for one credential. ``config`` is the ``sender`` mapping."""

    def __init__(self, config, credential, sleep=time.sleep):
        self.credential = credential
        self.config = validate_sender_config(config, credential)
        self.base_url = self.config["base_url"].rstrip("/")
        self.ids = self.config["webhook_ids"]
        self.sleep = sleep
        try:
            auth, self._secrets = auth_headers(self.config["auth"])
        except ValueError as exc:
            raise _error(str(exc), credential, "preflight",
                         fix="set the sender's admin credentials, from the environment or Ansible "
                             "Vault rather than in clear.")
        self.api = HttpApi(self.base_url, auth=auth, headers=self.config.get("headers"),
                           timeout=self.config["timeout"], retries=self.config["retries"],
                           validate_certs=self.config["validate_certs"], ca_path=self.config.get("ca_path"))

    def error(self, message, step, fix=None, secrets=()):
        return _error(message, self.credential, step, fix, list(self._secrets) + list(secrets))

    def _call(self, step, name, webhook_id, body=None, form=None, secrets=()):
        spec = self.config.get(name) or {}
        path = self.api.path(spec["path"], {"id": webhook_id})
        method = spec["method"].upper()
        try:
            resp = self.api.call(method, path, body=body, form=form, sleep=self.sleep)
        except connection_errors() as exc:
            raise self.error(
                "%s %s: could not reach the webhook sender at %s (%s), after %d retries."
                % (method, path, self.base_url, _reach_error(exc), self.config["retries"]),
                step, secrets=secrets,
                fix="check sender.base_url, that the sender's API is up and reachable from the "
                    "controller, and the TLS options (validate_certs, ca_path).")
        return method, path, resp

    def _status_fix(self, name, method, status):
        kind = status_kind(status, method)
        if kind == "maybe_acted":   # the sender's switch and test make no key: the busy fix holds
            kind = "busy"
        return {
            "auth": "check sender.auth: the sender refused the admin credential or it lacks permission.",
            "not_found": "check sender.base_url, sender.webhook_id and sender.%s.path." % name,
            "busy": ("the sender is rate-limiting or failing (still HTTP %d after %d retries); try again "
                     "later." % (status, self.config["retries"])),
            "rejected": "the sender rejected the request: check sender.%s (method, path, body)." % name,
            "unexpected": "if HTTP %d means success for this API, add it to sender.%s.expect_status." % (status, name),
        }[kind]

    def switch(self, secret, check_mode=False):
        """Set ``secret`` as the signing secret of every webhook id. Returns a list of
        ``{id, status}``; raises RotationError (step sender_switch) on the first failure."""
        if not secret:
            raise self.error("no new secret to switch the sender to.", "sender_switch",
                             fix="the store holds no value being rotated in: re-run from the start.")
        spec = self.config["switch"]
        results = []
        for webhook_id in self.ids:
            if check_mode:
                results.append({"id": webhook_id, "status": None})
                continue
            values = {"secret": secret, "id": webhook_id}
            form = fill(spec.get("form"), values) if spec.get("form") is not None else None
            body = fill(spec.get("body"), values) if form is None else None
            try:
                method, path, resp = self._call("sender_switch", "switch", webhook_id, body=body, form=form,
                                                secrets=[secret])
                if not status_ok(resp.status, spec.get("expect_status")):
                    raise self.error(status_message(method, path, resp.status, spec.get("expect_status") or "2xx"),
                                     "sender_switch", fix=self._status_fix("switch", method, resp.status),
                                     secrets=[secret])
            except RotationError as exc:
                if results:
                    # some endpoints already sign with the new secret: say which
                    exc.message += (" Webhook(s) %s were already switched to the new secret; %s not."
                                    % (", ".join(r["id"] for r in results),
                                       ", ".join(self.ids[len(results):])))
                    exc.args = (exc.render(),)
                raise
            results.append({"id": webhook_id, "status": resp.status})
        return results

    def test(self, check_mode=False, hide=()):
        """Ask the sender for a test delivery on every webhook id; check its answer
        (``test.expect_status``, ``test.json``). Returns a list of ``{id, status, checks}``."""
        spec = self.config.get("test")
        if not spec:
            return []
        compiled = _verify.compile_checks(spec.get("json"), self.credential) if spec.get("json") else {}
        results = []
        for webhook_id in self.ids:
            if check_mode:
                results.append({"id": webhook_id, "status": None, "checks": []})
                continue
            body = fill(spec.get("body"), {"id": webhook_id}) if spec.get("body") is not None else None
            method, path, resp = self._call("sender_test", "test", webhook_id, body=body)
            secrets = list(self._secrets) + list(hide)
            checks = _verify.run_checks(resp.json(), spec.get("json"), compiled, secrets) if compiled else []
            problems = []
            if not status_ok(resp.status, spec.get("expect_status")):
                problems.append("HTTP %d, expected %s" % (resp.status, spec.get("expect_status") or "2xx"))
            problems.extend("%s: expected %s, got %s" % (c["expr"], _verify.show(c["expected"]),
                                                         _verify.show(c["actual"]))
                            for c in checks if not c["ok"])
            if problems:
                raise self.error("the sender's test delivery of webhook %s failed (%s %s): %s."
                                 % (webhook_id, method, path, "; ".join(problems)), "sender_test",
                                 fix="the sender now signs with the new secret and the receivers still "
                                     "accept both: look at the receivers' logs for the delivery and at "
                                     "sender.test; then re-run.", secrets=hide)
            results.append({"id": webhook_id, "status": resp.status, "checks": checks})
        return results


# --- the receivers ----------------------------------------------------------------------

def test_payload(credential, probe, now=time.time):
    """A recognisable test event (no secret in it)."""
    return {"id": "evt_credops_" + _secrets.token_hex(8), "type": TEST_EVENT_TYPE,
            "created": int(now()), "credential": credential, "probe": probe}


def deliver(url, secret, signature=None, credential=None, consumer=None, probe="probe",
            expect="accepted", status=None, deadline=60, interval=1, timeout=10, retries=1,
            validate_certs=True, ca_path=None, clock=time.monotonic, sleep=time.sleep, now=time.time):
    """POST a test payload signed with ``secret`` to a receiver until it answers as expected
    (``accepted``: ``status`` or any 2xx; ``rejected``: ``status`` or 401/403) or
    ``deadline`` seconds pass. Returns ``{status, attempts, elapsed}``; raises RotationError
    (step verify) with what came back. The secret and its signature are never shown."""
    sig = dict(SIGNATURE_DEFAULTS)
    sig.update(dict((k, v) for k, v in (signature or {}).items() if v is not None))
    if expect not in ("accepted", "rejected"):
        raise ValueError("expect must be accepted or rejected")
    wanted = list(status) if status else None
    end = clock() + max(0.0, float(deadline))
    last = {"status": None, "error": None}
    hide = [secret]

    def attempt():
        """True once the receiver answers as expected; ``last`` keeps what it answered."""
        payload = test_payload(credential, probe, now)
        text = json.dumps(payload)   # _http.request sends json.dumps(payload): these very bytes
        signed = _webhook.sign(secret, text, header_format=sig["format"],
                               payload_format=sig["payload_format"], now=now)
        hide.extend([signed["header"], signed["signature"]])
        try:
            resp = request("POST", url, headers={sig["header"]: signed["header"]}, json_body=payload,
                           timeout=timeout, retries=retries, validate_certs=validate_certs,
                           ca_path=ca_path, sleep=lambda s: sleep(max(0.0, min(s, end - clock()))))
        except connection_errors() as exc:
            last.update(status=None, error=_reach_error(exc))
            return False
        last.update(status=resp.status, error=None)
        if expect == "accepted":
            return resp.status in wanted if wanted else 200 <= resp.status < 300
        return resp.status in (wanted or REJECTED)

    polled = poll_until(attempt, deadline=deadline, interval=interval, last_at_deadline=False, clock=clock,
                        sleep=sleep)
    if polled.done:
        return {"status": last["status"], "attempts": polled.attempts, "elapsed": round(polled.elapsed, 2)}
    attempts, last_status, last_error = polled.attempts, last["status"], last["error"]
    who = "receiver %s" % consumer if consumer else "the receiver"
    got = ("no answer (%s)" % last_error) if last_status is None else "HTTP %s" % last_status
    if expect == "accepted":
        want = "a 2xx answer" if not wanted else "HTTP %s" % "/".join(str(s) for s in wanted)
        message = ("%s did not accept a test delivery signed with the %s secret at %s: expected %s, got "
                   "%s after %d attempt(s) in %ss." % (who, probe, url, want, got, attempts, deadline))
        fix = ("check that the service restarted with the env layout of webhook_rotate.yml "
               "(<env_var>, <env_var>_NEW, <env_var>_OLD) and accepts every secret set there, that it is "
               "listening on the verify URL, and sender.signature (header, format); then re-run. The old "
               "secret is still accepted everywhere, nothing is broken for the sender.")
    else:
        message = ("%s still accepts a test delivery signed with the %s secret at %s: expected %s, got "
                   "%s after %d attempt(s) in %ss." % (who, probe, url,
                                                       "/".join(str(s) for s in (wanted or REJECTED)), got,
                                                       attempts, deadline))
        fix = ("check that the service was restarted and no longer reads <env_var>_OLD / <env_var>_NEW "
               "or another copy of the old secret; then re-run.")
    raise _error(message, credential, "verify", fix=fix, secrets=hide)


def read_deliveries(url, list_path="deliveries", matched_path="matched", credential=None,
                    consumer=None, timeout=10, retries=2, validate_certs=True, ca_path=None,
                    sleep=time.sleep):
    """The labels (``current``/``new``/``old``/``none``) of a receiver's logged deliveries, oldest
    first. Raises RotationError (step verify) when the log cannot be read."""
    if not HAS_JMESPATH:
        raise _error("the jmespath Python library is needed to read a delivery log", credential, "verify",
                     fix="pip install jmespath")
    who = "receiver %s" % consumer if consumer else "the receiver"
    try:
        resp = request("GET", url, timeout=timeout, retries=retries, validate_certs=validate_certs,
                       ca_path=ca_path, sleep=sleep)
    except connection_errors() as exc:
        raise _error("could not read the delivery log of %s at %s (%s)." % (who, url, _reach_error(exc)),
                     credential, "verify", fix="check the consumer's deliveries.url and that the "
                                               "receiver is running.")
    if not 200 <= resp.status < 300:
        raise _error("the delivery log of %s at %s answered HTTP %d." % (who, url, resp.status),
                     credential, "verify", fix="check the consumer's deliveries.url.")
    data = resp.json()
    items = jmespath_search(list_path, data) if data is not None else None
    if not isinstance(items, list):
        raise _error("the delivery log of %s at %s has no list at %r." % (who, url, list_path),
                     credential, "verify", fix="check the consumer's deliveries.list_path.")
    labels = []
    for item in items:
        label = jmespath_search(matched_path, item) if isinstance(item, dict) else None
        labels.append(label if label in MATCH_LABELS else "unknown")
    return labels


def judge_deliveries(receivers, require="new", forbid=("old",)):
    """Over the receivers' new log entries (``{name, labels, skip}`` each): problems (list of
    text) and the count of each label. OK when at least one entry matched ``require`` and
    none matched a label of ``forbid``."""
    counts = dict((label, 0) for label in MATCH_LABELS + ("unknown",))
    per = []
    for item in receivers:
        fresh = list(item.get("labels") or [])[int(item.get("skip") or 0):]
        mine = dict((label, fresh.count(label)) for label in set(fresh))
        for label, n in mine.items():
            counts[label] = counts.get(label, 0) + n
        per.append({"name": item.get("name"), "new_entries": len(fresh), "matched": mine})
    problems = []
    if require and counts.get(require, 0) == 0:
        problems.append("no delivery since the switch matched the %s secret on any receiver" % require)
    for label in forbid or ():
        if counts.get(label, 0):
            where = ", ".join("%s (%d)" % (p["name"], p["matched"][label]) for p in per
                              if p["matched"].get(label))
            problems.append("%d delivery(ies) since the switch still matched the %s secret: %s"
                            % (counts[label], label, where))
    return problems, counts, per
