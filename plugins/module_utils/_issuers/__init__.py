# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issuers: where a new value is created and an old one revoked.

One small file per kind, each a subclass of ``Issuer`` (see ``_base``). ``get_issuer``
picks the class from ISSUERS by the inventory's ``issuer.kind``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type
