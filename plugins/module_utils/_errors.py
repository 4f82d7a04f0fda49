# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error type of the collection.

Library errors (hvac, botocore, urllib, psycopg) are turned into a RotationError whose
message names the credential, the step and the likely fix (the runbook's
troubleshooting table), and never carries a secret value.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class RotationError(Exception):
    """An error a person can act on: which credential, which step, what to do.

    ``changed`` is set to True on an error raised after something already changed (the task's
    failure says so)."""

    changed = False

    def __init__(self, message, credential=None, step=None, fix=None):
        self.message = message
        self.credential = credential
        self.step = step
        self.fix = fix
        super(RotationError, self).__init__(self.render())

    def render(self):
        parts = []
        if self.credential:
            parts.append("credential '%s'" % self.credential)
        if self.step:
            parts.append("step %s" % self.step)
        head = (", ".join(parts) + ": ") if parts else ""
        text = head + self.message
        if self.fix:
            text += " Fix: " + self.fix
        return text

    def __str__(self):
        return self.render()


def scrub(text, secrets):
    """Replace every occurrence of each secret in text (for messages from libraries)."""
    text = str(text)
    for value in secrets or ():
        if value and isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, "********")
    return text
