# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the library clients of ``_clients/`` share: environment defaults and TLS verification."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os


def env_default(value, *names):
    """``value`` when set (not None, not empty), else the first of the environment variables
    ``names`` that is set, else None."""
    if value:
        return value
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    return None


def verify_setting(validate_certs=True, ca_cert=None):
    """What requests and botocore take as ``verify``: False when ``validate_certs`` is false,
    else the CA bundle ``ca_cert`` when given, else True (the system's CAs). ``validate_certs``
    None counts as true."""
    if validate_certs is False:
        return False
    return ca_cert or True
