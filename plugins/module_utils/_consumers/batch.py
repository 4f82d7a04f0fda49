# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The batch consumer kind's declarations: a job that reads the value from an environment file
when it next runs. Nothing is restarted and nothing answers a health check, so it is not
verified after a deploy, and discovery does not scan for it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.credops.rotation.plugins.module_utils._consumers._base import VERIFY, Consumer


class BatchConsumer(Consumer):
    kind = "batch"
    FIELDS = dict(
        name=dict(type="str"), kind=dict(type="str"), hosts=dict(type="raw"), env_file=dict(type="path"),
        env_var=dict(type="str"), verify=dict(type="dict", options=VERIFY),
    )
    MAP_FIELDS = ("env_file", "env_var")
    VERIFIED = False

    @classmethod
    def preflight(cls, report, path, consumer, inventory, claims, check):
        check.host_ref(report, path + ".hosts", consumer.get("hosts"), inventory, required=False)
        check.env_file(report, path + ".env_file", consumer.get("env_file"), False)
        check.env_var(report, path + ".env_var", consumer.get("env_var"), False)
