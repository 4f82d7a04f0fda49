# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory hosts of a credential, for the ``hosts`` of a due report's row: the filter
``due_report`` (given the groups) and the lookup ``rotation_status`` both fill it this way."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.credops.rotation.plugins.module_utils._inventory import model as _model


def record_hosts(record, inventory):
    """The hosts of every consumer of ``record`` (a credential's record, or None), each once,
    in the order the consumers name them."""
    hosts = []
    for consumer in (record or {}).get("consumers") or []:
        if isinstance(consumer, dict):
            for host in _model.consumer_hosts(consumer, inventory):
                if host not in hosts:
                    hosts.append(host)
    return hosts
