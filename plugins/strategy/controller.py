# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategy plugin: the linear strategy, with this collection's code loaded once before the
workers fork."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: controller
short_description: The linear strategy, with this collection's plugins loaded once for every task
description:
  - Runs a play exactly as C(ansible.builtin.linear) does.
  - Ansible runs every task of every host in a worker process forked from the main process. A
    filter, action plugin or module of this collection that the main process has not imported is
    imported again by each worker, for each task (tens of milliseconds each). Before the play
    runs, this strategy imports them, their C(module_utils) and the client libraries they use
    (C(hvac), C(requests), C(jmespath), when installed) once in the main process, so every worker
    starts with them loaded.
  - The collection's playbooks use it for their plays that run on the controller (localhost and
    the per-credential worker hosts). Plays on consumer hosts keep the strategy the user
    configured, and find the collection already loaded.
version_added: 0.4.0
author: credops.rotation maintainers (@credops)
'''

import importlib
import os
import pkgutil

from ansible.plugins.strategy.linear import StrategyModule as LinearStrategyModule
from ansible.utils.display import Display

display = Display()

_PACKAGE = "ansible_collections.credops.rotation.plugins"
# third-party libraries the controller-side modules import at the top of a step
_LIBRARIES = ("requests", "hvac", "jmespath")
# left to the worker that needs them: they pull in the kubernetes client (~0.15 s), which only
# Kubernetes consumers use
_SKIP = ("kubernetes", "k8s_")
_LOADED = []


def preload():
    """Import the collection's filters, action plugins, modules and module_utils once (and the
    client libraries they use); a name that cannot be imported is left to the worker, which
    reports it as it always did. Returns the names imported."""
    if _LOADED:
        return _LOADED
    names = list(_LIBRARIES)
    for sub in ("module_utils", "plugin_utils", "filter", "action", "modules"):
        try:
            package = importlib.import_module("%s.%s" % (_PACKAGE, sub))
        except ImportError:
            continue
        for path in getattr(package, "__path__", []):
            for info in pkgutil.walk_packages([path], prefix="%s.%s." % (_PACKAGE, sub)):
                if not any(part in info.name.rsplit(".", 1)[-1] for part in _SKIP):
                    names.append(info.name)
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # pylint: disable=broad-except
            display.vvvv("credops.rotation.controller: %s not preloaded (%s)" % (name, exc))
            continue
        _LOADED.append(name)
    display.vvv("credops.rotation.controller: %d modules preloaded" % len(_LOADED))
    return _LOADED


class StrategyModule(LinearStrategyModule):
    def run(self, iterator, play_context):
        if os.environ.get("CREDOPS_ROTATION_PRELOAD", "1") != "0":
            preload()
        return super(StrategyModule, self).run(iterator, play_context)
