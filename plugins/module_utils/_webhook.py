# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Webhook signing secrets: generate, sign, verify, and the dual-accept phase table.

Pure functions on the standard library only, so the lab's demo receiver (which runs on
hosts without Ansible) can import this file as it is.

Signatures are HMAC-SHA256 in hex over a signed payload, by default ``"<ts>.<payload>"``,
sent in a header by default formatted like ``t=<ts>,v1=<hex>`` (the Stripe convention).
The whole secret string, prefix included, is the HMAC key (UTF-8). Verification compares
with ``hmac.compare_digest`` against every accepted secret and every signature in the header
(no early exit), so its timing does not tell which secret or how many bytes matched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import hmac
import re
import secrets as _secrets
import time

DEFAULT_PREFIX = "whsec_"
DEFAULT_LENGTH = 32
DEFAULT_HEADER_FORMAT = "t={timestamp},v1={signature}"
DEFAULT_PAYLOAD_FORMAT = "{timestamp}.{payload}"
DEFAULT_TOLERANCE = 300
MIN_LENGTH = 16

# --- the dual-accept handshake --------------------------------------------------------
#   single       one secret; senders sign with it, receivers accept only it
#   dual_accept  receivers accept the current (new) and the previous (old) secret, while
#                the sender is switched to the new one and the switch is verified
#   complete     the previous secret is dropped: receivers accept only the new one
# Staying in a phase is always allowed (re-runs). dual_accept -> single is the rollback
# (the new secret is dropped, the old one stays). A finished rotation may start the next.
PHASES = ("single", "dual_accept", "complete")
TRANSITIONS = {
    "single": ("single", "dual_accept"),
    "dual_accept": ("dual_accept", "complete", "single"),
    "complete": ("complete", "single", "dual_accept"),
}
NEXT_PHASE = {"single": "dual_accept", "dual_accept": "complete", "complete": "single"}
# Which stored values a receiver must accept in each phase (names, never values).
ACCEPTED = {"single": ("current",), "dual_accept": ("current", "previous"), "complete": ("current",)}


class WebhookError(ValueError):
    """Bad input to a webhook helper; the message never carries a secret."""


def generate(length=DEFAULT_LENGTH, prefix=DEFAULT_PREFIX):
    """A new signing secret: prefix + URL-safe base64 of ``length`` random bytes."""
    if length < MIN_LENGTH:
        raise WebhookError("length must be at least %d random bytes, got %d" % (MIN_LENGTH, length))
    return (prefix or "") + _secrets.token_urlsafe(length)


def _to_bytes(value):
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _fill(fmt, **values):
    """str.format for our two placeholders only (other braces are left alone)."""
    out = fmt
    for key, value in values.items():
        out = out.replace("{%s}" % key, str(value))
    return out


def signed_payload(payload, timestamp, payload_format=DEFAULT_PAYLOAD_FORMAT):
    if "{payload}" not in payload_format:
        raise WebhookError("payload_format must contain {payload}, got %r" % payload_format)
    payload = payload.decode("utf-8") if isinstance(payload, bytes) else str(payload)
    # the payload goes in last so a payload containing "{timestamp}" is not rewritten
    return payload_format.replace("{timestamp}", str(timestamp)).replace("{payload}", payload)


def signature(secret, payload, timestamp, payload_format=DEFAULT_PAYLOAD_FORMAT):
    """HMAC-SHA256 hex of the signed payload under secret."""
    if not secret:
        raise WebhookError("no secret to sign with")
    message = signed_payload(payload, timestamp, payload_format)
    return hmac.new(_to_bytes(secret), _to_bytes(message), hashlib.sha256).hexdigest()


def format_header(signatures, timestamp, header_format=DEFAULT_HEADER_FORMAT):
    """The header value for one signature or several (several: the signature item repeated,
    e.g. ``t=1,v1=aa,v1=bb``, as senders do while two secrets are live)."""
    if "{signature}" not in header_format:
        raise WebhookError("header_format must contain {signature}, got %r" % header_format)
    if isinstance(signatures, str):
        signatures = [signatures]
    pairs = _pair_format(header_format)
    if pairs and len(signatures) > 1:
        items = []
        for key, placeholder in pairs:
            if placeholder == "signature":
                items.extend("%s=%s" % (key, sig) for sig in signatures)
            else:
                items.append("%s=%s" % (key, timestamp))
        return ",".join(items)
    if len(signatures) != 1:
        raise WebhookError("header_format %r holds exactly one signature" % header_format)
    return _fill(header_format, timestamp=timestamp, signature=signatures[0])


def sign(secret, payload, timestamp=None, header_format=DEFAULT_HEADER_FORMAT,
         payload_format=DEFAULT_PAYLOAD_FORMAT, now=time.time):
    """Sign a payload: dict(timestamp, signature, header)."""
    if timestamp is None:
        timestamp = int(now())
    sig = signature(secret, payload, timestamp, payload_format)
    return {"timestamp": int(timestamp), "signature": sig,
            "header": format_header(sig, timestamp, header_format)}


_PAIR_ITEM = re.compile(r"^\s*([A-Za-z0-9_.-]+)=\{(timestamp|signature)\}\s*$")


def _pair_format(header_format):
    """[(key, placeholder), ...] when the format is comma-separated key={placeholder} items."""
    items = header_format.split(",")
    pairs = []
    for item in items:
        match = _PAIR_ITEM.match(item)
        if not match:
            return None
        pairs.append((match.group(1), match.group(2)))
    return pairs


def parse_header(header, header_format=DEFAULT_HEADER_FORMAT):
    """(timestamp or None, [signature, ...]) from a signature header.

    Formats of comma-separated ``key={placeholder}`` items are parsed as pairs in any order,
    a repeated signature key giving several signatures (``t=1,v1=aa,v1=bb``); unknown keys
    (e.g. ``v0=``) are ignored. Any other format is matched as a whole.
    """
    if "{signature}" not in header_format:
        raise WebhookError("header_format must contain {signature}, got %r" % header_format)
    header = (header or "").strip()
    pairs = _pair_format(header_format)
    if pairs:
        keys = dict((placeholder, key) for key, placeholder in pairs)
        timestamp, sigs = None, []
        for item in header.split(","):
            key, sep, value = item.strip().partition("=")
            if not sep:
                continue
            if key == keys.get("timestamp"):
                timestamp = value.strip()
            elif key == keys.get("signature"):
                sigs.append(value.strip())
    else:
        pattern = re.escape(header_format)
        pattern = pattern.replace(re.escape("{timestamp}"), r"(?P<timestamp>[0-9]+)", 1)
        pattern = pattern.replace(re.escape("{signature}"), r"(?P<signature>[0-9A-Fa-f]+)", 1)
        match = re.fullmatch(pattern, header)
        if not match:
            return None, []
        groups = match.groupdict()
        timestamp, sigs = groups.get("timestamp"), [groups["signature"]]
    if timestamp is not None:
        try:
            timestamp = int(timestamp)
        except ValueError:
            timestamp = None
    return timestamp, sigs


def verify(accepted_secrets, payload, header=None, signature_value=None, timestamp=None,
           header_format=DEFAULT_HEADER_FORMAT, payload_format=DEFAULT_PAYLOAD_FORMAT,
           tolerance=DEFAULT_TOLERANCE, now=time.time):
    """Check a signature against a list of accepted secrets.

    Either ``header`` (parsed with header_format) or ``signature_value`` (+ ``timestamp``).
    Returns dict(valid, matched (index into accepted_secrets or None), reason, timestamp).
    ``tolerance`` seconds bounds the age of the timestamp (replay protection); 0 turns it off.
    """
    sigs = []
    if header is not None:
        parsed_ts, sigs = parse_header(header, header_format)
        if timestamp is None:
            timestamp = parsed_ts
    if signature_value:
        sigs = list(sigs) + [signature_value]
    if not sigs:
        return {"valid": False, "matched": None, "timestamp": timestamp,
                "reason": "no signature found in the header (format %r)" % header_format}
    if timestamp is None and "{timestamp}" in payload_format:
        return {"valid": False, "matched": None, "timestamp": None,
                "reason": "no timestamp: the header carries none and none was given"}
    if tolerance and timestamp is not None and abs(now() - int(timestamp)) > tolerance:
        return {"valid": False, "matched": None, "timestamp": timestamp,
                "reason": "timestamp %s is outside the tolerance of %ss" % (timestamp, tolerance)}
    matched = None
    for index, secret in enumerate(accepted_secrets or ()):
        if not secret:
            continue
        expected = _to_bytes(signature(secret, payload, timestamp, payload_format))
        for sig in sigs:
            # no early exit: every pair is compared, each in constant time
            if hmac.compare_digest(expected, _to_bytes(sig.lower())) and matched is None:
                matched = index
    if matched is None:
        return {"valid": False, "matched": None, "timestamp": timestamp,
                "reason": "the signature matches none of the %d accepted secret(s)"
                          % len([s for s in accepted_secrets or () if s])}
    return {"valid": True, "matched": matched, "timestamp": timestamp, "reason": "ok"}


def transition(current_phase, phase=None):
    """The phase to move to from current_phase: phase when that move is allowed, or the
    next one of the handshake when phase is None. Raises WebhookError on an illegal move."""
    if current_phase not in PHASES:
        raise WebhookError("unknown current phase %r (one of: %s)" % (current_phase, ", ".join(PHASES)))
    if phase is None:
        return NEXT_PHASE[current_phase]
    if phase not in PHASES:
        raise WebhookError("unknown phase %r (one of: %s)" % (phase, ", ".join(PHASES)))
    if phase not in TRANSITIONS[current_phase]:
        raise WebhookError(
            "illegal phase transition %s -> %s: from %s the allowed phases are %s; the old "
            "secret may only be dropped after both were accepted (dual_accept) and the sender "
            "was switched" % (current_phase, phase, current_phase, ", ".join(TRANSITIONS[current_phase])))
    return phase
