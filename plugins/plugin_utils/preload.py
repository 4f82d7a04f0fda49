# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's filters, action plugins, modules and module_utils (and the client libraries
they use), imported once in ansible-playbook's main process before the first play.

Ansible runs every task of every host in a worker process forked from the main process. A plugin
or module the main process has not imported is imported again by each worker, for each task (tens
of milliseconds each); imported here first, every worker starts with it loaded. Called by the
callback plugin beside the collection's playbooks (playbooks/callback_plugins/), which Ansible loads
for them without any configuration. CREDOPS_ROTATION_PRELOAD=0 turns it off."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import pkgutil

from ansible.utils.display import Display

display = Display()

_PACKAGE = "ansible_collections.credops.rotation.plugins"
# libraries the controller-side modules import at the top of a step, or at their first request
_LIBRARIES = ("requests", "hvac", "jmespath", "ansible.module_utils.urls")
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
            display.vvvv("credops.rotation: %s not preloaded (%s)" % (name, exc))
            continue
        _LOADED.append(name)
    _default_tls_context()
    display.vvv("credops.rotation: %d modules preloaded before the workers fork" % len(_LOADED))
    return _LOADED


def _default_tls_context():
    """Build the TLS context of a request that validates certificates with the system's CAs
    (module_utils/_http.tls_context) here, once: loading the CA certificates costs about 0.05 s
    of CPU, which every worker that makes a request (the revocation, the issue, each consumer's
    verification) would otherwise spend again."""
    try:
        from ansible_collections.credops.rotation.plugins.module_utils import _http
        _http.tls_context(True, None)
    except Exception as exc:  # pylint: disable=broad-except
        display.vvvv("credops.rotation: no TLS context prepared (%s)" % exc)
