# -*- coding: utf-8 -*-
# pylint: disable=unused-import  # astroid applies its stdlib "http" hints (imports) to this module
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Mirrors HTTP_ARGSPEC in plugins/module_utils/_http.py.
    DOCUMENTATION = r"""
options:
  validate_certs:
    description:
      - Verify the server's TLS certificate. Leave on outside a lab.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM CA bundle to verify the server's certificate against.
    type: path
  timeout:
    description:
      - Seconds to wait for one HTTP response.
    type: float
    default: 10
  retries:
    description:
      - How often to retry a connection error, a 429 or a 5xx answer, with exponential
        backoff, honouring C(Retry-After).
    type: int
    default: 3
"""
