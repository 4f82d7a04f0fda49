# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pick the issuer class by ``issuer.kind``, and the one argspec of the ``issuer`` option.

The imports are static so AnsiballZ packs every kind into the module. Adding a kind is
adding one file with an Issuer subclass (its ARGSPEC and its declarations: the credential
types it issues, required fields, preflight checks, stored facts, roll back order), one line
in ISSUERS, and its options in the doc fragment credops.rotation.issuer. Preflight, the JSON
Schema, the modules and the roles read those declarations through this registry.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.module_utils._http import HTTP_ARGSPEC
from ansible_collections.credops.rotation.plugins.module_utils._issuers.aws_iam import AwsIamIssuer
from ansible_collections.credops.rotation.plugins.module_utils._issuers.generated import GeneratedIssuer
from ansible_collections.credops.rotation.plugins.module_utils._issuers.postgres import PostgresIssuer
from ansible_collections.credops.rotation.plugins.module_utils._issuers.rest import RestIssuer
from ansible_collections.credops.rotation.plugins.module_utils._issuers.vault_pki import VaultPkiIssuer

ISSUERS = {
    "rest": RestIssuer,
    "aws_iam": AwsIamIssuer,
    "postgres": PostgresIssuer,
    "vault_pki": VaultPkiIssuer,
    "generated": GeneratedIssuer,
}


def issuer_class(kind):
    """The Issuer subclass of ``kind``, or None (reading its declarations constructs nothing)."""
    return ISSUERS.get(kind) if isinstance(kind, str) else None


def compatible_issuers(ctype):
    """The issuer kinds that can issue credential type ``ctype``, in registry order."""
    return tuple(kind for kind, cls in ISSUERS.items() if ctype in cls.TYPES)


def issuer_traits(issuer, key_id=None):
    """What the roles need to know about an issuer block, without naming its kind:

    - ``replaces_in_place``: its ``create`` replaced the previous value at the issuer, so a roll
      back restores the previous value there first, before the store and the consumers;
    - ``previous_record``: the request (url, headers, validate_certs, ca_path) that reads the
      public record of ``key_id`` back from the issuer on a roll back, or None."""
    block = issuer if isinstance(issuer, dict) else {}
    cls = issuer_class(block.get("kind"))
    if cls is None:
        raise RotationError("unknown issuer kind %r." % (block.get("kind"),), step="preflight",
                            fix="set issuer.kind to one of: %s." % ", ".join(sorted(ISSUERS)))
    return dict(kind=cls.kind, replaces_in_place=bool(cls.replaces_in_place(block)),
                previous_record=cls.previous_record(block, key_id))


def _issuer_argspec():
    """The union of every kind's options (documented in doc fragment credops.rotation.issuer).

    Options that several kinds share (``role``, ``length``) must be declared alike. The HTTP
    options may be set per issuer too; unset, they come from the module's own options."""
    options = dict(kind=dict(type="str", required=True, choices=sorted(ISSUERS)))
    for name, spec in HTTP_ARGSPEC.items():
        spec = dict(spec)
        spec.pop("default", None)
        options[name] = spec
    for kind in sorted(ISSUERS):
        for name, spec in ISSUERS[kind].ARGSPEC.items():
            if name in options and options[name] != spec:
                raise ValueError("issuer option %s is declared differently by kind %s" % (name, kind))
            options[name] = copy.deepcopy(spec)
    return options


#: the argspec of a module's ``issuer`` option
ISSUER_ARGSPEC = dict(type="dict", required=True, options=_issuer_argspec())


def register_issuer(cls):
    """Add an Issuer subclass to ISSUERS by its ``kind`` and rebuild ISSUER_ARGSPEC's options in
    place. The collection's own kinds are the lines of ISSUERS above; this is for a kind defined
    elsewhere (tests). Call it before ``_inventory`` is imported: preflight's tables are built once."""
    ISSUERS[cls.kind] = cls
    ISSUER_ARGSPEC["options"] = _issuer_argspec()
    return cls


def _prune(value, options):
    """Drop unset (None) options, through sub-options, so each issuer sees only what was
    given. Free-form values (a request body) are kept as they are."""
    pruned = {}
    for name, item in value.items():
        if item is None:
            continue
        sub = (options.get(name) or {}).get("options")
        pruned[name] = _prune(item, sub) if sub and isinstance(item, dict) else item
    return pruned


def issuer_config(issuer, http=None):
    """The issuer block as the module got it, unset options dropped, the module-level HTTP
    options (validate_certs, ca_path, timeout, retries) filled in where the block has none."""
    config = _prune(dict(issuer or {}), ISSUER_ARGSPEC["options"])
    for name, value in (http or {}).items():
        if config.get(name) is None and value is not None:
            config[name] = value
    return config


def get_issuer(config, credential):
    """The Issuer for an issuer block (a dict with ``kind``). Raises RotationError for an
    unknown kind and for a block that kind cannot work with."""
    config = dict(config or {})
    kind = config.pop("kind", None)
    cls = ISSUERS.get(kind)
    if cls is None:
        raise RotationError("unknown issuer kind %r." % (kind,), credential=credential, step="preflight",
                            fix="set issuer.kind to one of: %s." % ", ".join(sorted(ISSUERS)))
    return cls(config, credential)


def issuer_from_params(params):
    """The Issuer for a module's params (credential, issuer and the HTTP options)."""
    http = dict((name, params.get(name)) for name in HTTP_ARGSPEC)
    return get_issuer(issuer_config(params.get("issuer"), http), params.get("credential"))
