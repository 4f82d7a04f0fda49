# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Third-party libraries imported on first use, not when a module_utils file is loaded.

Every issuer and store file is imported by every module run that can use it (AnsiballZ
packs them all), but one run uses one kind. boto3, psycopg and hvac together cost about
half a second to import; an emergency revocation through a rest issuer must not pay for
them before its DELETE goes out.

    boto3 = LazyModule("boto3")
    ...
    if boto3.import_error():            # at construction: a clear missing_required_lib
        raise ...
    boto3.session.Session(...)          # the first attribute access imports the library
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import traceback


class LazyModule(object):
    """Stands for the module ``name``; the first attribute access imports it."""

    def __init__(self, name):
        self._lazy_name = name
        self._lazy_module = None

    def _lazy_load(self):
        if self._lazy_module is None:
            self._lazy_module = importlib.import_module(self._lazy_name)
        return self._lazy_module

    def __getattr__(self, attr):
        # only called for names the proxy itself does not have
        if attr.startswith("_lazy_"):
            raise AttributeError(attr)
        return getattr(self._lazy_load(), attr)

    def import_error(self):
        """The import's traceback text when the library cannot be imported, else None."""
        try:
            self._lazy_load()
        except ImportError:
            return traceback.format_exc()
        return None

    def __repr__(self):
        return "<LazyModule %s%s>" % (self._lazy_name, "" if self._lazy_module is None else " (imported)")
