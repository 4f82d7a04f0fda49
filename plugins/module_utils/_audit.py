# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The JSON-lines audit trail: one object per rotation event, never a secret value."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import getpass
import json
import os

from ansible_collections.credops.rotation.plugins.module_utils import _time

EVENTS = ("started", "resumed", "issued", "stored", "deployed", "verified", "promoted",
          "revoke_blocked", "revoked", "finished", "rolled_back", "failed", "notified",
          "scope_assessed", "incident_recorded", "dual_accept", "sender_switched",
          "old_secret_dropped", "picked_up_next_run", "skipped")

# Keys that must never be written to the trail even if a caller passes them.
FORBIDDEN_KEYS = ("secret", "value", "api_key", "password", "token", "private_key",
                  "previous_value", "new_value")


# Who ran it, first found wins: an explicit rotation_actor, the user AWX/AAP (or Tower) launched
# the job as (passed as the extra vars awx_user_name / tower_user_name), then the environment.
ACTOR_VARIABLES = ("rotation_actor", "awx_user_name", "tower_user_name")
ACTOR_ENVIRONMENT = ("ROTATION_ACTOR", "AWX_USER_NAME", "TOWER_USER_NAME", "SUDO_USER", "USER")


def actor(env=None, variables=None):
    """Who ran it: the AWX/AAP user when AWX runs the job, else the OS user."""
    for name in ACTOR_VARIABLES:
        value = (variables or {}).get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    env = os.environ if env is None else env
    for name in ACTOR_ENVIRONMENT:
        if env.get(name):
            return env[name]
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no passwd entry
        return "unknown"


def make_entry(credential, event, consumer=None, key_id=None, previous_key_id=None,
               incident=None, details=None, actor_name=None, time=None):
    if event not in EVENTS:
        raise ValueError("unknown audit event %r (known: %s)" % (event, ", ".join(EVENTS)))
    entry = {"time": time or _time.now_iso(fraction=True), "credential": credential, "event": event,
             "actor": actor_name or actor()}
    for key, value in (("consumer", consumer), ("key_id", key_id),
                       ("previous_key_id", previous_key_id), ("incident", incident)):
        if value:
            entry[key] = value
    if details:
        bad = [k for k in details if k.lower() in FORBIDDEN_KEYS]
        if bad:
            raise ValueError("audit details must not carry secret fields: %s" % ", ".join(bad))
        entry["details"] = details
    return entry


def open_for_append(path):
    """(the trail's absolute path, a file descriptor open for appending to it); creates the file
    (0600) and its directory. OSError when it cannot."""
    path = os.path.abspath(os.path.expanduser(path))
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, 0o750)
    return path, os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


def append(path, entry):
    """Append one line; creates the file (0600) and its directory."""
    line = (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8")
    path, fd = open_for_append(path)
    try:
        # several credentials are worked on side by side (one worker process each): one whole
        # line per write, under a lock, so their entries never interleave
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    return path
