# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that ask the consumer registry what a kind does, so roles branch on no kind.

Each filter is documented in the YAML file of its own name beside this one
(``ansible-doc -t filter credops.rotation.NAME``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.credops.rotation.plugins.module_utils._consumers import registry


def consumer_traits(consumer):
    """What the roles need to know about a consumer kind (see ``registry.consumer_traits``);
    the input is a consumer (a mapping with kind) or its kind."""
    kind = consumer.get("kind") if isinstance(consumer, dict) else consumer
    traits = registry.consumer_traits(kind)
    if traits is None:
        raise AnsibleFilterError("consumer_traits: unknown consumer kind %r; the kinds are: %s"
                                 % (kind, ", ".join(sorted(registry.CONSUMERS))))
    return traits


class FilterModule(object):
    def filters(self):
        return {"consumer_traits": consumer_traits}
