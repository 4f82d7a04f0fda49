# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The store interface every kind implements.

The rotation is a state machine whose phase lives in the store's metadata:

    (none|finished|rolled_back) --write_pending--> pending --> deployed --> verified
        --promote/clear_previous--> finished
    pending|deployed|verified --rollback--> rolled_back

``read()`` returns a dict with these keys (values None when absent):
    current, current_id      the value consumers must use now (KV v2: <field>; AWS: AWSCURRENT,
                              or AWSPENDING while a rotation is in flight)
    previous, previous_id    the value before it, kept while a rotation is in flight
    phase                    rotation_phase
    last_rotated             ISO-8601 UTC, from metadata
    metadata                 every non-secret metadata item (dict of str)
    version                  the store's version id of the current value
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

PHASES = ("pending", "deployed", "verified", "finished", "rolled_back")
IN_FLIGHT = ("pending", "deployed", "verified")


class Store(object):
    kind = None

    def __init__(self, config, credential):
        self.config = config or {}
        self.credential = credential

    def read(self):
        raise NotImplementedError

    def write_pending(self, value, key_id, metadata):
        """Keep the current value as previous and make ``value`` the pending one; phase pending."""
        raise NotImplementedError

    def set_phase(self, phase, metadata=None, data=None):
        """Record the phase (and other non-secret metadata / data fields)."""
        raise NotImplementedError

    def promote(self, metadata=None):
        """Make the pending value current for good (AWS: AWSCURRENT, old one AWSPREVIOUS)."""
        raise NotImplementedError

    def clear_previous(self, metadata=None):
        """Forget the previous value once it is revoked; phase finished."""
        raise NotImplementedError

    def rollback(self, metadata=None):
        """Put the previous value back as current; phase rolled_back."""
        raise NotImplementedError
