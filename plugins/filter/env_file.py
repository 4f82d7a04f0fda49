# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A value as one line of an environment file that systemd's ``EnvironmentFile=`` (and a POSIX
shell's ``.``) reads back byte for byte. Documented in env_file_value.yml beside this file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.credops.rotation.plugins.module_utils import _env_file


def env_file_value(value, name="the value"):
    """``value`` as the right-hand side of ``NAME=...`` (module_utils/_env_file.quote)."""
    try:
        return _env_file.quote(value, name)
    except _env_file.EnvFileError as exc:
        raise AnsibleFilterError("env_file_value: %s" % exc)


def env_file_problem(value):
    """What makes ``value`` impossible in an environment file (``a newline``, ...), or "" when nothing."""
    return _env_file.problem(value)


class FilterModule(object):
    def filters(self):
        return {"env_file_value": env_file_value, "env_file_problem": env_file_problem}
