# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One line ``NAME=value`` of an environment file that systemd's ``EnvironmentFile=`` (and a POSIX
shell's ``.``) reads back byte for byte; and the edit of such a file that changes only that line.
Used by the env_file_value filter (controller) and the systemd_consumer module (consumer host)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# Written as they are: what neither systemd's parser nor a shell gives a meaning to.
_PLAIN = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
# Inside double quotes, systemd's parser (and sh) take a backslash before these four literally.
_ESCAPE = re.compile(r'(["\\`$])')
# What no environment file can carry: a line ends at a newline, and C strings at NUL.
UNCARRIABLE = {"\n": "a newline", "\r": "a carriage return", "\x00": "a NUL byte"}


class EnvFileError(ValueError):
    """A value an environment file cannot carry; the message names the value, never shows it."""


def problem(value):
    """What makes ``value`` impossible in an environment file (``a newline``, ...), or "" when nothing."""
    text = "" if value is None else str(value)
    return next((what for char, what in UNCARRIABLE.items() if char in text), "")


def quote(value, name="the value"):
    """``value`` as the right-hand side of ``NAME=...``: as it is when plain, else double-quoted
    with ``"``, ``\\``, `````` and ``$`` escaped. Refuses what an environment file cannot carry,
    naming ``name`` and the character, never the value."""
    if value is None:
        raise EnvFileError("%s is empty (none)" % name)
    text = str(value)
    what = problem(text)
    if what:
        raise EnvFileError("%s contains %s, which a systemd EnvironmentFile cannot carry" % (name, what))
    if _PLAIN.match(text):
        return text
    return '"%s"' % _ESCAPE.sub(r"\\\1", text)


def set_lines(text, assignments):
    """``text`` (the file's content) with ``NAME=value`` set for each (name, line) of
    ``assignments``, where line is the whole ``NAME=...`` line: the last line assigning NAME
    (``NAME=``, ``export NAME=``, leading blanks allowed) is replaced, other lines are kept as they
    are; a NAME not assigned yet is appended. Returns the new text."""
    lines = text.splitlines()
    for name, line in assignments:
        pattern = re.compile(r"^\s*(export\s+)?%s=" % re.escape(name))
        found = [i for i, old in enumerate(lines) if pattern.match(old)]
        if found:
            lines[found[-1]] = line
        else:
            lines.append(line)
    return "\n".join(lines) + "\n" if lines else ""
