# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The issuer interface every kind implements."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class Issuer(object):
    """One issuer kind.

    ``config`` is the credential's ``issuer`` mapping from the inventory (kind removed),
    ``credential`` its name (for error messages). Methods never log secret values.
    """

    kind = None
    #: whether the issuer gives its keys ids (False: the value is its own identity)
    has_ids = True
    #: whether revoke() has any meaning (generated values are dropped, not revoked)
    can_revoke = True

    def __init__(self, config, credential):
        self.config = config or {}
        self.credential = credential

    def create(self):
        """Make a new value. Returns dict(id=..., secret=..., info={non-secret facts})."""
        raise NotImplementedError

    def revoke(self, key_id, secret=None):
        """Revoke a value. Returns True if it changed something, False if already gone."""
        raise NotImplementedError

    def exists(self, key_id):
        """True if the key id is still active at the issuer (check mode / idempotence)."""
        raise NotImplementedError

    def test(self, secret):
        """True if the value is accepted by the issuer, False if rejected, None if untestable."""
        return None

    def usage(self, key_id, since):
        """Uses of key_id since an ISO-8601 time: a list of dict(time=..., source=...),
        or None when the issuer keeps no such record."""
        return None
