# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of this collection's modules.

``RotationModule`` is the module's ``AnsibleModule``, built from the module's own options and
the shared ones its doc fragments describe (``HTTP_ARGSPEC``, ``KUBERNETES_CONNECTION_ARGSPEC``),
and ``run`` is the one place a ``RotationError`` becomes ``fail_json``: its message (no secret
in it), its step and whether something changed before it.

    module = RotationModule(dict(credential=dict(type="str", required=True)), HTTP_ARGSPEC)
    changed, result = module.run(lambda: work(module.params), credential=..., where="step issue")
    module.exit_json(changed=changed, **result)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError, scrub


def merge_options(own, *shared):
    """A module's argument_spec: its own options, then each shared set; a name defined twice is
    a bug in the module, not something to settle silently."""
    spec = dict(own)
    for options in shared:
        twice = sorted(set(spec) & set(options))
        if twice:
            raise ValueError("options defined twice: %s" % ", ".join(twice))
        spec.update(options)
    return spec


class RotationModule(AnsibleModule):
    """An ``AnsibleModule`` of this collection (check mode supported unless said otherwise)."""

    def __init__(self, argument_spec, *shared, **kwargs):
        kwargs.setdefault("supports_check_mode", True)
        super(RotationModule, self).__init__(argument_spec=merge_options(argument_spec, *shared), **kwargs)

    def hidden(self, text):
        """``text`` without any of the task's no_log values (and the values added to them)."""
        return scrub(text, sorted(self.no_log_values, key=lambda value: (-len(str(value)), str(value))))

    def run(self, work, credential=None, where=None, fields=None):
        """What ``work()`` returns; the task fails on a ``RotationError``.

        The failure carries the error's text as ``msg``, its ``step`` and ``changed`` (set on the
        error when something changed before it), over ``fields``: what the module reports with
        any failure (the credential's name, what already happened). With ``where`` (e.g.
        ``"step issue"``), any other exception fails the task too, as "credential 'NAME', WHERE:
        unexpected TYPE: TEXT" with its traceback; without, it propagates."""
        try:
            return work()
        except RotationError as exc:
            failure = dict(fields or {})
            failure.setdefault("changed", exc.changed)
            failure.update(msg=self.hidden(exc), step=exc.step)
            self.fail_json(**failure)
        except Exception as exc:  # a bug or an unforeseen library error: still no secret in the message
            if where is None:
                raise
            failure = dict(fields or {})
            failure.update(msg="credential '%s', %s: unexpected %s: %s" % (
                credential, where, type(exc).__name__, self.hidden(exc)), exception=self.hidden(traceback.format_exc()))
            self.fail_json(**failure)
