# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which fields each block of a ``rotation_credentials`` record has, declared once.

Each block is declared like an Ansible argument spec (``type``, ``elements``, ``choices``,
``options``), so preflight (``validation``), the JSON Schema (``schema``) and the modules agree:

- the issuer and store blocks go to the modules as they are, and a module refuses a field
  its argument spec does not know (Unsupported parameters), possibly after something changed
  (the store step comes after the issue step). So their fields ARE those argument specs
  (``ISSUERS[kind].ARGSPEC``, ``HTTP_ARGSPEC``, ``STORE_ARGSPEC`` as far as ``STORES[kind].FIELDS``
  go): a field of another kind is ignored (a warning), a field no kind has is an error
  (``ACCEPTED``). What each kind requires is its own declaration too (``REQUIRED``,
  ``REQUIRED_ONE_OF``, ``CLOSED_BLOCKS``): nothing here names an issuer or store kind;
- the record, its consumers and their verify blocks are read by the roles only: a field not
  declared is warned about, and ignored (the contract lets fields be added). Each consumer
  kind declares its own fields, required fields and sub-blocks (``CONSUMERS[kind].FIELDS``,
  ``REQUIRED``, ``REQUIRED_ONE_OF``, ``BLOCKS``): nothing here names a consumer kind either;
- fields a runbook adds to a block are declared in ``ADDED_FIELDS``, beside the runbook that
  reads them, and merged here, once, when the tables are built: nothing patches them later.

``SPECS`` (block -> options), ``KNOWN`` (block -> field names) and ``ACCEPTED`` (block -> what
the modules accept at all) are built once at import and never changed afterwards.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.credops.rotation.plugins.module_utils import _policy
from ansible_collections.credops.rotation.plugins.module_utils._consumers._base import VERIFY as _VERIFY
from ansible_collections.credops.rotation.plugins.module_utils._consumers.registry import CONSUMERS
from ansible_collections.credops.rotation.plugins.module_utils._http import HTTP_ARGSPEC
from ansible_collections.credops.rotation.plugins.module_utils._issuers.registry import ISSUER_ARGSPEC, ISSUERS
from ansible_collections.credops.rotation.plugins.module_utils._stores.registry import STORE_ARGSPEC, STORES

ISSUER_KINDS = tuple(ISSUERS)
STORE_KINDS = tuple(STORES)
CONSUMER_KINDS = tuple(CONSUMERS)
AUTH_TYPES = ("bearer", "basic", "header")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _closed_blocks():
    """issuer kind -> its sub-blocks where what is known is all that is accepted (the rest
    issuer's requests and auth). The block names are shared by all kinds: declared once."""
    blocks, owner = {}, {}
    for kind, cls in ISSUERS.items():
        for block in cls.CLOSED_BLOCKS:
            if block in owner:
                raise ValueError("issuer sub-block %s is declared by kinds %s and %s" % (block, owner[block], kind))
            owner[block] = kind
        blocks[kind] = tuple(cls.CLOSED_BLOCKS)
    return blocks


#: issuer kind -> its closed sub-blocks (see ``Issuer.CLOSED_BLOCKS``)
CLOSED_BLOCKS = _closed_blocks()
#: all closed sub-blocks, whichever kind has them
ISSUER_BLOCKS = tuple(block for kind in ISSUER_KINDS for block in CLOSED_BLOCKS[kind])


def _str():
    return dict(type="str")


_RECORD = dict(
    type=dict(type="str", choices=list(_policy.TYPES)),
    risk=dict(type="str", choices=list(_policy.RISKS)),
    max_age_days=dict(type="int"),
    rotation_contact=_str(),
    last_rotated=_str(),
    issuer=dict(type="dict"),
    store=dict(type="dict"),
    consumers=dict(type="list", elements="dict"),
    description=dict(type="raw"),
    notes=dict(type="raw"),
    tags=dict(type="raw"),
)

# The sender block goes to the module webhook_sender as it is, which checks it with
# _sender.SENDER_ARGSPEC; that module imports what preflight must not (cryptography), so its
# fields are mirrored here (without defaults), and a unit test keeps the two the same.
_CALL = dict(method=_str(), path=_str())
_STATUSES = dict(type="list", elements="int")
_SENDER = dict(
    base_url=_str(),
    auth=dict(type="dict", options=dict(
        type=dict(type="str", choices=list(AUTH_TYPES)),
        token=dict(type="str", no_log=True),
        username=_str(),
        password=dict(type="str", no_log=True),
        name=_str(),
        value=dict(type="str", no_log=True),
    )),
    webhook_id=dict(type="raw"),  # an id or a list of them
    switch=dict(type="dict", options=dict(_CALL, body=dict(type="raw"), form=dict(type="dict"), expect_status=_STATUSES)),
    test=dict(type="dict", options=dict(_CALL, body=dict(type="raw"), expect_status=_STATUSES, json=dict(type="dict"))),
    signature=dict(type="dict", options=dict(header=_str(), format=_str(), payload_format=_str())),
    headers=dict(type="dict"),
    validate_certs=dict(type="bool"),
    ca_path=dict(type="path"),
    timeout=dict(type="float"),
    retries=dict(type="int"),
)

#: Fields runbooks add to a block (the contract allows added fields): (who reads them, block, options).
ADDED_FIELDS = (
    # webhook_rotate.yml (docs/runbooks/webhook.md, ansible-doc credops.rotation.webhook_sender):
    # the sender's API, described like a rest issuer, on a webhook_secret record ...
    ("webhook_rotate.yml", "record", dict(sender=dict(type="dict", options=_SENDER))),
    # (what runbooks add to a consumer is declared by the consumer kind that reads it, with
    # its other fields: _consumers/<kind>.py)
)


def _issuer_spec(kind):
    spec = dict(kind=dict(type="str", choices=[kind]))
    for name, option in HTTP_ARGSPEC.items():
        option = dict(option)
        option.pop("default", None)
        spec[name] = option
    spec.update(copy.deepcopy(ISSUERS[kind].ARGSPEC))
    return spec


def _store_spec(kind):
    names = ("kind",) + tuple(STORES[kind].FIELDS)
    spec = dict((name, copy.deepcopy(STORE_ARGSPEC[name])) for name in names)
    spec["kind"] = dict(type="str", choices=[kind])
    return spec


def _build_specs():
    specs = {"record": copy.deepcopy(_RECORD)}
    for kind, cls in CONSUMERS.items():
        specs["consumer." + kind] = copy.deepcopy(cls.FIELDS)
        specs["consumer." + kind]["kind"] = dict(type="str", choices=[kind])
    for _reader, block, options in ADDED_FIELDS:
        specs[block].update(copy.deepcopy(options))
    specs["verify"] = copy.deepcopy(_VERIFY)
    for kind in ISSUERS:
        specs["issuer." + kind] = _issuer_spec(kind)
        for block in CLOSED_BLOCKS[kind]:
            specs[block] = copy.deepcopy(ISSUERS[kind].ARGSPEC[block]["options"])
    for kind in STORES:
        specs["store." + kind] = _store_spec(kind)
    sender = specs["record"]["sender"]["options"]
    specs["sender"] = sender
    for block in ("switch", "test", "signature"):
        specs["sender." + block] = sender[block]["options"]
    # a consumer kind's sub-blocks (verify, a webhook receiver's deliveries) by their block names
    for kind, cls in CONSUMERS.items():
        for field, block in cls.BLOCKS.items():
            if block not in specs:
                specs[block] = specs["consumer." + kind][field]["options"]
    return specs


#: block -> its options, argspec-shaped ("record", "consumer.<kind>", "verify", "issuer.<kind>",
#: "auth", "create", "revoke", "test", "usage", "store.<kind>", "sender", "sender.<block>", "deliveries")
SPECS = _build_specs()

#: block -> the names of its fields (unknown ones are warned about)
KNOWN = dict((block, tuple(options)) for block, options in SPECS.items())

#: what the modules accept at all, per block (the union over the kinds); in the rest
#: issuer's sub-blocks what is known is all that is accepted
ACCEPTED = dict([("issuer", tuple(ISSUER_ARGSPEC["options"])), ("store", tuple(STORE_ARGSPEC))]
                + [(block, KNOWN[block]) for block in ISSUER_BLOCKS])

#: what preflight requires in a block (the JSON Schema's ``required``; ``validation`` says, field
#: by field, why and how to fix it). The issuer and store kinds' come from their declarations.
REQUIRED = dict([
    ("record", ("type", "rotation_contact", "issuer", "store", "consumers")),
    ("verify", ("url",)),
    ("sender", ("base_url", "auth", "webhook_id", "switch")),
    ("sender.switch", ("path",)),
    ("sender.test", ("path",)),
    ("deliveries", ("url",)),
] + [("issuer." + kind, tuple(cls.REQUIRED)) for kind, cls in ISSUERS.items()]
  + [(block, tuple(fields)) for cls in ISSUERS.values() for block, fields in cls.BLOCK_REQUIRED.items()]
  + [("store." + kind, ("kind",) + tuple(cls.REQUIRED)) for kind, cls in STORES.items()]
  + [("consumer." + kind, tuple(cls.REQUIRED)) for kind, cls in CONSUMERS.items()])

#: blocks that need one of several sets of fields
REQUIRED_ONE_OF = dict(("consumer." + kind, tuple(cls.REQUIRED_ONE_OF)) for kind, cls in CONSUMERS.items()
                       if cls.REQUIRED_ONE_OF)
REQUIRED_ONE_OF.update(("issuer." + kind, tuple(cls.REQUIRED_ONE_OF)) for kind, cls in ISSUERS.items() if cls.REQUIRED_ONE_OF)
