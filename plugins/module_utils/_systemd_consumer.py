# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of systemd_consumer (documented in its DOCUMENTATION), shared by the module, which
writes the files and restarts the services on the consumer host, and its action plugin, which runs
it there and then, on the controller, verifies each consumer and records what happened.

Only ``entries`` (path, name, value, service, restart, credential, consumer) and ``timeout`` reach
the host; the rest is the action plugin's."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# what the module on the host reads of each entry, and of the task
MODULE_ENTRY_KEYS = ("path", "name", "value", "service", "restart", "credential", "consumer")
MODULE_KEYS = ("entries", "timeout")

WHICH = ("new", "old")


def argument_spec():
    return dict(
        entries=dict(type="list", elements="dict", required=True, required_one_of=[["value", "refused"]], options=dict(
            path=dict(type="path", required=True),
            name=dict(type="str", required=True),
            value=dict(type="str", no_log=True),
            service=dict(type="str", required=True),
            restart=dict(type="bool", default=False),
            credential=dict(type="str", default=""),
            consumer=dict(type="str", default=""),
            key_id=dict(type="str", no_log=False),
            verify=dict(type="dict"),
            refused=dict(type="str"),
        )),
        timeout=dict(type="int", default=60),
        deadline=dict(type="float", default=60),
        skip=dict(type="list", elements="str", default=[]),
        which=dict(type="str", choices=list(WHICH), default="new"),
        audit=dict(type="bool", default=False),
        incident=dict(type="str"),
    )


def module_args(params, entries):
    """What the module on the host gets: ``entries`` (those to write) with the fields it reads."""
    args = dict((k, params[k]) for k in MODULE_KEYS if k != "entries")
    args["entries"] = [dict((k, e[k]) for k in MODULE_ENTRY_KEYS if k in e) for e in entries]
    return args
