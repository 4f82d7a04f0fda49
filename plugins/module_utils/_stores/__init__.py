# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stores: the secrets manager that holds the current and the previous value.

One small file per kind, each a subclass of ``Store`` (see ``_base``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type
