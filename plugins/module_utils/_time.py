# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Times: the one place that reads and writes ISO-8601 / RFC 3339 and says what "now" is.

Every time the collection reads (the inventory's ``last_rotated``, Vault's ``created_time``
with nanoseconds, AWS's datetimes, Kubernetes' annotations, certificate dates) goes through
``parse_time``; every time it writes is ISO-8601 UTC with a ``Z`` from ``format_time``.

- Accepted: ``YYYY-MM-DD``, then ``T`` or a space and ``HH:MM[:SS[.fraction]]``, then ``Z``,
  ``+HH:MM``, ``+HHMM`` or ``+HH`` (or nothing: a time without an offset is UTC). Fractions of
  any length are cut to microseconds. Datetimes (naive: UTC) and dates are accepted as they are.
- Written: ``2024-08-15T10:30:00Z`` (to the second), or with ``fraction=True``
  ``2024-08-15T10:30:00.123456Z``.

Pure computation, no third-party library: filters, lookups and modules all import it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import datetime
import re

UTC = datetime.timezone.utc

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|z|[+-]\d{2}:?\d{2}|[+-]\d{2})?$")


def now():
    """The current time, an aware UTC datetime."""
    return datetime.datetime.now(UTC)


def from_timestamp(seconds):
    """An aware UTC datetime from a UNIX timestamp."""
    return datetime.datetime.fromtimestamp(seconds, UTC)


def parse_time(value, required=False):
    """An aware UTC datetime from an ISO-8601 string, a datetime or a date; None and "" stay None
    (with ``required``, they raise too).

    Raises ValueError (with the offending text) for anything else, numbers included.
    """
    if value is None or value == "":
        if required:
            raise ValueError("not an ISO-8601 time: %r" % (value,))
        return None
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError("not an ISO-8601 time: %r" % (value,))
    match = _ISO.match(value.strip())
    if not match:
        raise ValueError("not an ISO-8601 time: %r" % (value,))
    year, month, day, hour, minute, second, frac, zone = match.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    when = datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                             int(second or 0), micro, tzinfo=UTC)
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        when = when - sign * offset
    return when


def format_time(value, fraction=False):
    """ISO-8601 UTC with a Z, to the second; with ``fraction=True`` always to the microsecond,
    with ``fraction="auto"`` to the microsecond only when there is a fraction (as
    ``datetime.isoformat`` writes it).

    Takes what ``parse_time`` takes, and UNIX timestamps; None stays None."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        when = from_timestamp(value)
    else:
        when = parse_time(value)
    text = "%04d-%02d-%02dT%02d:%02d:%02d" % (
        when.year, when.month, when.day, when.hour, when.minute, when.second)
    if fraction is True or (fraction == "auto" and when.microsecond):
        return text + ".%06dZ" % when.microsecond
    return text + "Z"


def now_iso(fraction=False):
    """The current time as ``format_time`` writes it."""
    return format_time(now(), fraction=fraction)


def normalize_time(value):
    """A time as ISO-8601 UTC to the second, for records that keep what they were given: None
    and "" are None, text that is no time comes back unchanged (stripped)."""
    if value is None or value == "":
        return None
    if not isinstance(value, (str, datetime.datetime)):
        return str(value).strip()
    try:
        return format_time(value)
    except ValueError:
        return str(value).strip()


def unix_seconds(value):
    """Whole UNIX seconds of a time (the fraction dropped), or None when it is none or unreadable."""
    try:
        when = parse_time(value)
    except ValueError:
        return None
    return None if when is None else calendar.timegm(when.utctimetuple())
