# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Beside the collection's playbooks, so Ansible loads it for them with no configuration (plugins in
a playbook's adjacent *_plugins directories are loaded with it; this callback needs no enabling).
When a playbook starts, it imports the collection's code once in the main process, before any
worker forks (plugins/plugin_utils/preload.py). It prints nothing; CREDOPS_ROTATION_PRELOAD=0
turns it off."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r'''
name: credops_rotation_preload
type: aggregate
short_description: Load credops.rotation once before the workers fork
description:
  - Loaded with the collection's playbooks (it lives beside them), without being enabled.
  - When the playbook starts, imports the collection's filters, action plugins, modules and module_utils,
    and the client libraries they use, once in the main process, so every worker Ansible forks for a
    task starts with them loaded instead of importing them again.
  - Prints nothing. C(CREDOPS_ROTATION_PRELOAD=0) in the environment turns it off.
author: credops.rotation maintainers (@credops)
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "credops_rotation_preload"
    CALLBACK_NEEDS_ENABLED = False

    def v2_playbook_on_start(self, playbook):
        if os.environ.get("CREDOPS_ROTATION_PRELOAD", "1") == "0":
            return
        try:
            from ansible_collections.credops.rotation.plugins.plugin_utils.preload import preload
        except ImportError as exc:  # the collection is not on the collections path: nothing to load
            self._display.vvv("credops.rotation: nothing preloaded (%s)" % exc)
            return
        preload()
