# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pick the consumer kind's declarations by ``consumers[].kind``.

Adding a kind is adding one file with a Consumer subclass (see ``_base``: its fields, what
preflight requires and checks, where it is deployed, what the dependency map shows, how
discovery compares it, whether it is verified), one line in CONSUMERS, and the deploy role's
``tasks/<kind>.yml``. Preflight, the JSON Schema, the dependency map, drift and the deploy role
read the declarations through this registry; nothing here imports a client library.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.credops.rotation.plugins.module_utils._consumers.batch import BatchConsumer
from ansible_collections.credops.rotation.plugins.module_utils._consumers.kubernetes_kind import KubernetesConsumer
from ansible_collections.credops.rotation.plugins.module_utils._consumers.systemd import SystemdConsumer

CONSUMERS = {
    "systemd": SystemdConsumer,
    "kubernetes": KubernetesConsumer,
    "batch": BatchConsumer,
}


def consumer_class(kind):
    """The Consumer subclass of ``kind``, or None."""
    return CONSUMERS.get(kind) if isinstance(kind, str) else None


def consumer_traits(kind):
    """What the roles need to know about a consumer kind, without naming it: ``verified`` (the
    deploy role checks its verify endpoint after a deploy) and ``target`` (the field naming the
    hosts the value is deployed on). None for an unknown kind."""
    cls = consumer_class(kind)
    if cls is None:
        return None
    return dict(kind=cls.kind, verified=bool(cls.VERIFIED), target=cls.TARGET)


def register_consumer(cls):
    """Add a Consumer subclass to CONSUMERS by its ``kind``. The collection's own kinds are the
    lines of CONSUMERS above; this is for a kind defined elsewhere (tests). Call it before
    ``_inventory`` is imported: preflight's tables are built once."""
    CONSUMERS[cls.kind] = cls
    return cls
