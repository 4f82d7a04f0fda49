# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The JSON Schema (draft 2020-12) of ``rotation_credentials``, built from ``fields``.

Published as ``meta/schemas/rotation_credentials.schema.json`` for editors (a YAML language
server validates ``group_vars/all/credentials.yml`` with it as it is typed). It says what the
declarations say: each block's fields and their types and choices, what preflight requires,
which kinds there are; an issuer or store field no module accepts is refused, an unknown
field of the record or a consumer is allowed (preflight warns about it). A templated value
(``"{{ ... }}"``) is accepted wherever a number or true/false is wanted. Preflight
(``validation``) checks far more (paths, URLs, JMESPath, hosts, conflicts): the schema is
an editor's help, not the check.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.credops.rotation.plugins.module_utils._consumers.registry import CONSUMERS
from ansible_collections.credops.rotation.plugins.module_utils._inventory.fields import (
    ACCEPTED, CLOSED_BLOCKS, ISSUER_BLOCKS, ISSUER_KINDS, REQUIRED, REQUIRED_ONE_OF, SPECS, STORE_KINDS,
)

SCHEMA_PATH = "meta/schemas/rotation_credentials.schema.json"

_JSON_TYPES = {"str": "string", "path": "string", "int": "integer", "float": "number", "bool": "boolean",
               "list": "array", "dict": "object"}
_TEMPLATE = {"$ref": "#/$defs/template"}


def _option(option):
    """One field's schema. An unset field (null: ``field:`` with no value) is allowed, as the
    modules and preflight treat it as not given."""
    kind = option.get("type", "str")
    if kind == "raw":
        return {}
    if option.get("choices"):
        return {"enum": list(option["choices"]) + [None]}
    if kind == "dict" and option.get("options"):
        out = _block(option["options"], closed=True)
    else:
        out = {"type": _JSON_TYPES[kind]}
    if kind == "list" and option.get("elements"):
        out["items"] = _option({"type": option["elements"]})
    if kind in ("int", "float", "bool"):
        return {"anyOf": [out, _TEMPLATE, {"type": "null"}]}
    out["type"] = [out["type"], "null"]
    return out


def _block(options, required=(), closed=False, one_of=()):
    out = {"type": "object", "properties": dict((name, _option(option)) for name, option in options.items())}
    if required:
        out["required"] = list(required)
    if closed:
        out["additionalProperties"] = False
    if one_of:
        out["anyOf"] = [{"required": list(fields)} for fields in one_of]
    return out


def _spec_block(name, closed=False, refs=None):
    """The schema of one block of ``fields.SPECS``; ``refs``: field -> the $defs entry it is."""
    block = _block(SPECS[name], REQUIRED.get(name, ()), closed, REQUIRED_ONE_OF.get(name, ()))
    for field, ref in (refs or {}).items():
        block["properties"][field] = {"anyOf": [{"$ref": "#/$defs/" + ref}, {"type": "null"}]}
    return block


def _by_kind(kinds, prefix, accepted=None):
    """A block chosen by its ``kind``: each kind's fields; with ``accepted``, fields that no kind
    has are refused (a module would refuse them), fields of another kind are allowed (ignored)."""
    out = {"type": "object", "required": ["kind"], "properties": {"kind": {"enum": list(kinds)}},
           "allOf": [{"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                      "then": {"$ref": "#/$defs/%s.%s" % (prefix, kind)}} for kind in kinds]}
    if accepted is not None:
        out["propertyNames"] = {"enum": list(accepted)}
    return out


def credentials_schema():
    """The schema of a group_vars file holding ``rotation_credentials`` (a dict)."""
    defs = {
        "template": {"type": "string", "pattern": r"\{\{|\{%",
                     "description": "a Jinja template, resolved when the playbook runs"},
        "credentials": {
            "type": "object",
            "description": "credential name -> its record",
            "propertyNames": {"pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
            "additionalProperties": {"$ref": "#/$defs/record"},
        },
        "record": _spec_block("record", refs={"issuer": "issuer", "store": "store", "sender": "sender"}),
        "issuer": _by_kind(ISSUER_KINDS, "issuer", ACCEPTED["issuer"]),
        "store": _by_kind(STORE_KINDS, "store", ACCEPTED["store"]),
        "consumer": _by_kind(tuple(CONSUMERS), "consumer"),
        "verify": _spec_block("verify"),
        "sender": _spec_block("sender", refs={"auth": "auth", "switch": "sender.switch", "test": "sender.test",
                                              "signature": "sender.signature"}),
    }
    defs["record"]["properties"]["consumers"] = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/consumer"}}
    for name in ("sender.switch", "sender.test", "sender.signature"):
        defs[name] = _spec_block(name)
    # an issuer kind's closed sub-blocks (the rest issuer's requests): what is known is all that is accepted
    for name in ISSUER_BLOCKS:
        defs[name] = _spec_block(name, closed=True)
    for kind in ISSUER_KINDS:
        refs = dict((name, name) for name in CLOSED_BLOCKS[kind]) or None
        defs["issuer." + kind] = _spec_block("issuer." + kind, refs=refs)
    for kind in STORE_KINDS:
        defs["store." + kind] = _spec_block("store." + kind)
    for kind, cls in CONSUMERS.items():
        # a consumer kind's sub-blocks (verify, a webhook receiver's deliveries), by their block names
        for block in cls.BLOCKS.values():
            if block not in defs:
                defs[block] = _spec_block(block)
        defs["consumer." + kind] = _spec_block("consumer." + kind, refs=dict(cls.BLOCKS))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "rotation_credentials (credops.rotation)",
        "description": "The inventory contract of credops.rotation: the credentials to rotate, where each is "
                       "issued and stored, and who holds it. Generated from the collection's declarations "
                       "(plugins/module_utils/_inventory/fields.py); preflight checks more than this schema.",
        "type": "object",
        "properties": {"rotation_credentials": {"$ref": "#/$defs/credentials"}},
        "$defs": defs,
    }


def render():
    """The schema file's text (stable: keys sorted, two-space indent, a final newline)."""
    return json.dumps(credentials_schema(), indent=2, sort_keys=True) + "\n"
