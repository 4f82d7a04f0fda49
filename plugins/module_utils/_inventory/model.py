# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What validation, the dependency map and drift share: the inventory's hosts and groups,
inventory data fetched once (``resolve``), and the small value helpers."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import datetime

from ansible_collections.credops.rotation.plugins.module_utils._consumers.registry import consumer_class


def is_str(value):
    return isinstance(value, str) and value.strip() != ""


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def show(value, limit=60):
    """A non-secret value, shortened for a message."""
    text = repr(value) if not isinstance(value, str) else "'%s'" % value
    return text if len(text) <= limit else text[:limit - 3] + "...'"


def templated(value):
    """A value still holding Jinja (validated for shape only, not content)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


class Inventory(object):
    """The inventory's groups and hosts, to check and expand consumer ``hosts``."""

    def __init__(self, groups=None, hosts=None):
        self.known = groups is not None or hosts is not None
        self.groups = dict((k, list(v or [])) for k, v in (groups or {}).items())
        self.hosts = set(hosts or [])
        for members in self.groups.values():
            self.hosts.update(members)
        self.hosts.update(("localhost",))

    def exists(self, name):
        return not self.known or name in self.groups or name in self.hosts

    def expand(self, names):
        """Host names for a host/group name or a list of them (groups expanded, order kept)."""
        if names is None:
            return []
        if isinstance(names, str):
            members = self.groups.get(names)
            return list(members) if members is not None else [names]
        out, seen = [], set()
        for name in names:
            members = self.groups.get(name) if name in self.groups else [name]
            for host in members:
                if host not in seen:
                    seen.add(host)
                    out.append(host)
        return out


def consumer_hosts(consumer, inventory):
    """The inventory hosts of one consumer: those its kind's TARGET field names (``hosts``,
    or e.g. the cluster entry)."""
    cls = consumer_class(consumer.get("kind"))
    return inventory.expand(consumer.get(cls.TARGET if cls is not None else "hosts"))


def resolve(value, path="", problems=None):
    """A plain copy of (possibly lazily templated) inventory data, each value fetched once.

    Ansible templates inventory values when they are read; a value it cannot template (an
    undefined variable, a failing lookup) becomes None here and ``(field path, exception)`` is
    appended to ``problems``, instead of one exception hiding every other error.
    """
    problems = [] if problems is None else problems
    if isinstance(value, dict):
        out = {}
        for key in list(value.keys()):
            sub = "%s.%s" % (path, key) if path else str(key)
            try:
                item = value[key]
            except Exception as exc:  # AnsibleUndefinedVariable, lookup errors, ...
                problems.append((sub, exc))
                out[key] = None
                continue
            out[key] = resolve(item, sub, problems)
        return out
    if isinstance(value, (list, tuple)):
        out = []
        for index in range(len(value)):
            sub = "%s[%d]" % (path, index)
            try:
                item = value[index]
            except Exception as exc:
                problems.append((sub, exc))
                out.append(None)
                continue
            out.append(resolve(item, sub, problems))
        return out
    return value


def first_line(exc):
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(text).strip().splitlines()[0]


_SCALARS = (str, int, float, bool, type(None), datetime.date)


def plain(value):
    """A deep plain copy (dict/list/scalars), whatever mapping/sequence types came in."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return copy.copy(value)
