# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scope of a compromise: who used a key, and who read its secret from the store, since when.

Pure functions over what the issuer's usage call returned and over a Vault/OpenBao file
audit device's JSON lines, so they are testable without services.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json

from ansible_collections.credops.rotation.plugins.module_utils._time import UTC, parse_time


_EARLIEST = datetime.datetime.min.replace(tzinfo=UTC)


def _time(value):
    """The moment an ISO-8601 time names (any fraction, Z or any offset), or None when there is
    none or it cannot be read. Compared as moments, not as text: as text,
    '...10:30:00.123Z' sorts before '...10:30:00Z', and '+01:00' times out of order."""
    try:
        return parse_time(value)
    except ValueError:
        return None


def _order(value):
    """Sort key: the moment, with unreadable or missing times first (never dropped)."""
    return _time(value) or _EARLIEST


def store_reads(lines, mount, path, since):
    """Reads of the secret at mount/path in a Vault/OpenBao file audit log since ``since``.

    Returns a list of dict(time, source, actor, operation, path). Request and response
    entries of one read are counted once (the request)."""
    wanted = {"%s/data/%s" % (mount.strip("/"), path.strip("/")),
              "%s/%s" % (mount.strip("/"), path.strip("/"))}
    reads = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("type") != "request":
            continue
        request = entry.get("request") or {}
        if request.get("path") not in wanted or request.get("operation") not in ("read", "list"):
            continue
        when = entry.get("time")
        moment, start = _time(when), _time(since)
        if moment and start and moment < start:  # a read at an unreadable time is kept
            continue
        auth = entry.get("auth") or {}
        reads.append(dict(time=when, source=request.get("remote_address"),
                          actor=auth.get("display_name") or auth.get("entity_id"),
                          operation=request.get("operation"), path=request.get("path")))
    return reads


def summarize(uses, reads, known_sources):
    """Earliest use of the key from a source that is not a known consumer, and counts."""
    known = set(known_sources or ())
    unknown = sorted((u for u in uses or [] if u.get("source") not in known), key=lambda u: _order(u.get("time")))
    all_uses = sorted(uses or [], key=lambda u: _order(u.get("time")))
    return dict(
        uses=len(all_uses),
        first_use=all_uses[0]["time"] if all_uses else None,
        unknown_sources=sorted(set(str(u.get("source")) for u in unknown)),
        earliest_unauthorized_use=unknown[0]["time"] if unknown else None,
        store_reads=len(reads or []),
        store_readers=sorted(set(str(r.get("actor") or r.get("source")) for r in reads or [])),
    )
