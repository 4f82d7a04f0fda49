# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: actor
author: credops.rotation maintainers (@credops)
version_added: 0.2.0
short_description: Who runs this rotation, as the audit trail and the store record it
description:
  - Returns one name, the first that is set of
    V(rotation_actor) (a variable, to name the person explicitly),
    V(awx_user_name) and V(tower_user_name) (the extra variables AWX/AAP and Tower pass with every
    job - the user who launched it, or the schedule's owner),
    and the environment variables E(ROTATION_ACTOR), E(AWX_USER_NAME), E(TOWER_USER_NAME),
    E(SUDO_USER), E(USER); else the controller's OS user.
  - M(credops.rotation.audit_event) uses the same order for the C(actor) of each entry, and the
    roles for C(rotated_by) in the store.
options: {}
"""

EXAMPLES = r"""
- name: Record who rotated it
  ansible.builtin.debug:
    msg: "rotated by {{ lookup('credops.rotation.actor') }}"
"""

RETURN = r"""
_raw:
  description: The actor's name, one element.
  type: list
  elements: str
"""

from ansible.plugins.lookup import LookupBase

from ansible_collections.credops.rotation.plugins.module_utils import _audit


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        variables = variables or {}
        found = dict((name, self._templar.template(variables[name])) for name in _audit.ACTOR_VARIABLES if name in variables)
        return [_audit.actor(variables=found)]
