# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Consumers: where a value is deployed (systemd hosts are reached with ansible.builtin
modules from the deploy role; Kubernetes through the official client, here)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type
