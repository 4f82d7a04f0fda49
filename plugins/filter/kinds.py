# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that ask the issuer registry what a kind does, so roles branch on no kind.

Each filter is documented in the YAML file of its own name beside this one
(``ansible-doc -t filter credops.rotation.NAME``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.module_utils._issuers import registry


def issuer_traits(issuer, key_id=None):
    """What the roles need to know about an issuer block (see ``registry.issuer_traits``)."""
    if not isinstance(issuer, dict):
        raise AnsibleFilterError("issuer_traits: the input must be an issuer block (a mapping with kind)")
    try:
        return registry.issuer_traits(issuer, key_id)
    except RotationError as exc:
        raise AnsibleFilterError("issuer_traits: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"issuer_traits": issuer_traits}
