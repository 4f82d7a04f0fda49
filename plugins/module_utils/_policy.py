# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rotation policy: the one place that says when a credential is due.

The table is the inventory contract's (docs: /shared/spec/inventory.md, "The policy table"):

    type                    standard  high risk  emergency: maximum delay once compromised
    api_key                   90 d      30 d       immediate
    oauth_client_secret      180 d      90 d       immediate
    service_account_token     90 d      30 d       immediate
    database                  90 d      30 d       4 hours
    webhook_secret           180 d      90 d       24 hours
    certificate     renew when 1/3 of its lifetime is left, or 30 days before not_after,
                    whichever is earlier                   immediate

``max_age_days`` on a credential overrides the table. A credential is *overdue* when its
age is past its maximum (exactly at the maximum is not yet past: one second later is),
*warning* from 14 days before that moment (inclusive), *ok* before.

Everything here is pure computation on datetimes (no I/O), so the filters, the lookup and
the benchmark share one code path. Times are aware UTC datetimes, read and written by
``_time`` (ISO-8601 with ``Z`` or an offset, any fraction; no offset means UTC).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible_collections.credops.rotation.plugins.module_utils._time import format_time, parse_time

DAY = datetime.timedelta(days=1)

TYPES = ("api_key", "oauth_client_secret", "service_account_token", "database",
         "webhook_secret", "certificate")
RISKS = ("standard", "high")
DEFAULT_RISK = "standard"

# type -> maximum age in days per risk (None: by certificate lifetime), emergency delay in hours.
POLICY = {
    "api_key": {"standard": 90, "high": 30, "emergency_hours": 0},
    "oauth_client_secret": {"standard": 180, "high": 90, "emergency_hours": 0},
    "service_account_token": {"standard": 90, "high": 30, "emergency_hours": 0},
    "database": {"standard": 90, "high": 30, "emergency_hours": 4},
    "webhook_secret": {"standard": 180, "high": 90, "emergency_hours": 24},
    "certificate": {"standard": None, "high": None, "emergency_hours": 0},
}

WARNING_DAYS = 14
CERT_REMAINING_FRACTION = 1.0 / 3.0
CERT_MARGIN_DAYS = 30

STATUSES = ("ok", "warning", "overdue", "unknown")
# Sort order of a report: the most urgent first.
URGENCY = {"overdue": 0, "unknown": 1, "warning": 2, "ok": 3}


def risk_of(record):
    """The record's risk; None/missing is the default (standard)."""
    risk = (record or {}).get("risk")
    return DEFAULT_RISK if risk in (None, "") else risk


def max_age_days(credential_record):
    """The maximum age in days by type and risk (an override wins); None for certificates
    without an override (their maximum follows from their lifetime) or unknown types.

    An unknown risk value is treated as ``high``: the stricter maximum (validation rejects it
    anyway; the report must not silently relax the policy).
    """
    record = credential_record or {}
    override = record.get("max_age_days")
    if override not in (None, ""):
        return int(override)
    row = POLICY.get(record.get("type"))
    if row is None:
        return None
    risk = risk_of(record)
    return row[risk] if risk in RISKS else row["high"]


def emergency_max_delay(credential_type):
    """The longest an emergency rotation may wait once compromise is confirmed (timedelta;
    zero means immediately). Unknown types get zero."""
    row = POLICY.get(credential_type) or {}
    return datetime.timedelta(hours=row.get("emergency_hours", 0))


def certificate_due_at(not_before, not_after):
    """When a certificate is due for renewal: the earlier of 1/3 of its lifetime left and
    30 days before not_after."""
    not_before, not_after = parse_time(not_before), parse_time(not_after)
    lifetime = not_after - not_before
    by_third = not_after - datetime.timedelta(seconds=lifetime.total_seconds() * CERT_REMAINING_FRACTION)
    by_margin = not_after - datetime.timedelta(days=CERT_MARGIN_DAYS)
    return min(by_third, by_margin)


def _days(delta):
    return int(delta.total_seconds() // 86400)


def _classify(now, due_at):
    if now > due_at:
        return "overdue"
    if now >= due_at - datetime.timedelta(days=WARNING_DAYS):
        return "warning"
    return "ok"


def status(credential_record, last_rotated, now, cert_not_before=None, cert_not_after=None):
    """Where one credential stands against the policy.

    ``credential_record``: the inventory record (type, risk, max_age_days are read);
    ``last_rotated``: when the current value was made (ISO-8601/datetime/None);
    ``now``: the time of the report; ``cert_not_before``/``cert_not_after``: a certificate's
    validity, when known (its not_before is then its age's origin).

    Returns dict(age_days, max_age_days, status, due_at, warning_at, reason): age_days and
    max_age_days are whole days (floored); status is ok | warning | overdue, or unknown when
    nothing says how old the credential is; due_at/warning_at are ISO-8601 UTC.
    """
    record = credential_record or {}
    now = parse_time(now)
    ctype = record.get("type")
    override = record.get("max_age_days")
    has_override = override not in (None, "")
    start = parse_time(last_rotated)
    notes = []
    risk = risk_of(record)
    if risk not in RISKS:
        notes.append("unknown risk %r: the high-risk maximum applies" % (risk,))

    if ctype == "certificate" and cert_not_after is not None:
        not_after = parse_time(cert_not_after)
        not_before = parse_time(cert_not_before) if cert_not_before is not None else start
        if not_before is None:
            # Only the end is known: the 30-day margin is all the rule can say.
            not_before = not_after
            due_at = not_after - datetime.timedelta(days=CERT_MARGIN_DAYS)
            rule = "30 days before not_after %s (not_before unknown)" % format_time(not_after)
        elif has_override:
            due_at = min(not_before + datetime.timedelta(days=int(override)), not_after)
            rule = "max_age_days %d (override), not later than not_after %s" % (
                int(override), format_time(not_after))
        else:
            due_at = certificate_due_at(not_before, not_after)
            lifetime = not_after - not_before
            rule = "1/3 of its %d-day lifetime left or 30 days before not_after %s, whichever is earlier" % (
                _days(lifetime), format_time(not_after))
            if lifetime <= datetime.timedelta(days=CERT_MARGIN_DAYS):
                notes.append("a lifetime of 30 days or less is always due under this rule: "
                             "issue longer certificates or set max_age_days")
        start = not_before
        max_days = max(0, _days(due_at - not_before)) if due_at > not_before else 0
        if now > not_after:
            notes.append("expired at %s" % format_time(not_after))
    else:
        max_days = max_age_days(record)
        if max_days is None:
            if ctype == "certificate":
                reason = ("certificate: no not_after known (no certificate found in the store or at the "
                          "consumers' https verify endpoints) and no max_age_days to fall back on")
            else:
                reason = "unknown type %r and no max_age_days" % (ctype,)
            return _unknown(start, now, reason)
        if start is None:
            return _unknown(None, now, "no last rotation time: not in the store's metadata and "
                                       "no last_rotated in the inventory", max_days)
        due_at = start + datetime.timedelta(days=max_days)
        rule = "max_age_days %d%s" % (max_days, " (override)" if has_override else
                                      " (%s, %s risk)" % (ctype, risk))

    age = now - start
    if age.total_seconds() < 0:
        notes.append("last rotation is in the future (clock skew?)")
    state = _classify(now, due_at)
    if state == "overdue":
        head = "overdue since %s" % format_time(due_at)
    elif state == "warning":
        head = "due at %s (within %d days)" % (format_time(due_at), WARNING_DAYS)
    else:
        head = "due at %s" % format_time(due_at)
    reason = "%s: %s" % (head, rule)
    if notes:
        reason += "; " + "; ".join(notes)
    return {
        "age_days": max(0, _days(age)),
        "max_age_days": max_days,
        "status": state,
        "due_at": format_time(due_at),
        "warning_at": format_time(due_at - datetime.timedelta(days=WARNING_DAYS)),
        "reason": reason,
    }


def _unknown(start, now, reason, max_days=None):
    return {
        "age_days": max(0, _days(now - start)) if start is not None else None,
        "max_age_days": max_days,
        "status": "unknown",
        "due_at": None,
        "warning_at": None,
        "reason": reason,
    }


def consumer_names(record):
    return [c.get("name") for c in (record or {}).get("consumers") or [] if isinstance(c, dict)]


def _has_contact(contact):
    return isinstance(contact, str) and contact.strip() != ""


def findings(record):
    """Gaps of a record that block no report but must be fixed (the due report lists them)."""
    found = []
    contact = (record or {}).get("rotation_contact")
    if not _has_contact(contact):
        found.append("no owner: rotation_contact is %s. Fix: name who owns this credential, e.g. "
                     "`rotation_contact: payments-team@example.org` (rotate.yml and emergency.yml refuse "
                     "a record without one)" % ("missing or empty" if contact in (None, "") or _is_blank(contact)
                                                else "not a string (%s)" % type(contact).__name__))
    return found


def _is_blank(value):
    return isinstance(value, str) and not value.strip()


def due_row(name, record, now, last_rotated=None, source=None, not_before=None, not_after=None,
            error=None, hosts=None):
    """One row of the due report (what check_expiry prints): never a secret, only facts."""
    record = record or {}
    if error:
        result = _unknown(None, parse_time(now), "age unknown: %s" % error, max_age_days(record))
    else:
        result = status(record, last_rotated, now, not_before, not_after)
    row = {
        "credential": name,
        "type": record.get("type"),
        "risk": risk_of(record),
        "age_days": result["age_days"],
        "max_age_days": result["max_age_days"],
        "status": result["status"],
        "due_at": result["due_at"],
        "warning_at": result["warning_at"],
        "last_rotated": format_time(not_before if (not_after and not_before) else last_rotated)
        if not error else None,
        "source": source if not error else None,
        "reason": result["reason"],
        "consumers": consumer_names(record),
        "rotation_contact": record.get("rotation_contact") if _has_contact(record.get("rotation_contact")) else None,
        "findings": findings(record),
    }
    if not_after:
        row["not_after"] = format_time(not_after)
    if hosts is not None:
        row["hosts"] = hosts
    if error:
        row["error"] = error
    return row


def sort_rows(rows):
    """Most urgent first: overdue (longest overdue first), unknown, warning, ok; then by due date."""
    def key(row):
        return (URGENCY.get(row.get("status"), 1), row.get("due_at") or "", row.get("credential") or "")
    return sorted(rows, key=key)


def due_report(entries, now):
    """Rows for many credentials, most urgent first.

    ``entries``: an iterable of dicts with ``credential`` (name), ``record`` (the inventory
    record) and any of ``last_rotated``, ``source``, ``not_before``, ``not_after``, ``error``,
    ``hosts`` (what the lookup gathers from the stores).
    """
    now = parse_time(now)
    rows = [due_row(e.get("credential"), e.get("record"), now, e.get("last_rotated"), e.get("source"),
                    e.get("not_before"), e.get("not_after"), e.get("error"), e.get("hosts"))
            for e in entries]
    return sort_rows(rows)


def summary(rows):
    counts = dict((s, 0) for s in STATUSES)
    for row in rows:
        counts[row.get("status")] = counts.get(row.get("status"), 0) + 1
    return counts
