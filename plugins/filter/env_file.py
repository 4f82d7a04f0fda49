# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A value as one line of an environment file that systemd's ``EnvironmentFile=`` (and a POSIX
shell's ``.``) reads back byte for byte. Documented in env_file_value.yml beside this file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError

# Written as they are: what neither systemd's parser nor a shell gives a meaning to.
_PLAIN = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
# Inside double quotes, systemd's parser (and sh) take a backslash before these four literally.
_ESCAPE = re.compile(r'(["\\`$])')
# What no environment file can carry: a line ends at a newline, and C strings at NUL.
_UNCARRIABLE = {"\n": "a newline", "\r": "a carriage return", "\x00": "a NUL byte"}


def env_file_value(value, name="the value"):
    """``value`` as the right-hand side of ``NAME=...``: as it is when plain, else double-quoted
    with ``"``, ``\\``, `````` and ``$`` escaped. Refuses what an environment file cannot carry,
    naming ``name`` and the character, never the value."""
    if value is None:
        raise AnsibleFilterError("env_file_value: %s is empty (none)" % name)
    text = str(value)
    for char, what in _UNCARRIABLE.items():
        if char in text:
            raise AnsibleFilterError("env_file_value: %s contains %s, which a systemd EnvironmentFile cannot carry"
                                     % (name, what))
    if _PLAIN.match(text):
        return text
    return '"%s"' % _ESCAPE.sub(r"\\\1", text)


def env_file_problem(value):
    """What makes ``value`` impossible in an environment file (``a newline``, ...), or "" when nothing."""
    text = "" if value is None else str(value)
    return next((what for char, what in _UNCARRIABLE.items() if char in text), "")


class FilterModule(object):
    def filters(self):
        return {"env_file_value": env_file_value, "env_file_problem": env_file_problem}
