# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The store kinds by name, and the one argspec of a credential's ``store:`` block.

``STORE_ARGSPEC`` is mirrored by the doc fragment ``credops.rotation.store``; the module
``secret_store`` and the lookup ``store`` both validate with it. Adding a kind is adding
one file under ``_stores/`` (a Store subclass and its declarations: FIELDS, REQUIRED, DEFAULTS,
preflight), one line to ``STORES``, and its options here and in the doc fragment.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import env_fallback

from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.module_utils._stores.aws_secretsmanager import (
    AwsSecretsManagerStore,
)
from ansible_collections.credops.rotation.plugins.module_utils._stores.vault_kv2 import VaultKV2Store

STORES = {
    "vault_kv2": VaultKV2Store,
    "aws_secretsmanager": AwsSecretsManagerStore,
}

# Every option of a `store:` block (doc fragment: credops.rotation.store).
# `secret_id` is the AWS secret's name (not secret: no_log=False); the AppRole secret is
# `approle_secret_id`, so the two can never be confused in one mapping.
STORE_ARGSPEC = dict(
    kind=dict(type="str", required=True, choices=sorted(STORES)),
    # vault_kv2
    url=dict(type="str", fallback=(env_fallback, ["VAULT_ADDR", "BAO_ADDR"])),
    auth_method=dict(type="str", default="token", choices=["token", "approle"]),
    token=dict(type="str", no_log=True, fallback=(env_fallback, ["VAULT_TOKEN", "BAO_TOKEN"])),
    role_id=dict(type="str", no_log=False, fallback=(env_fallback, ["VAULT_ROLE_ID"])),
    approle_secret_id=dict(type="str", no_log=True, fallback=(env_fallback, ["VAULT_SECRET_ID"])),
    approle_mount=dict(type="str", default="approle"),
    namespace=dict(type="str", fallback=(env_fallback, ["VAULT_NAMESPACE", "BAO_NAMESPACE"])),
    mount=dict(type="str", default="secret"),
    path=dict(type="str"),
    # both
    field=dict(type="str"),
    validate_certs=dict(type="bool", default=True),
    ca_cert=dict(type="path", fallback=(env_fallback, ["VAULT_CACERT"])),
    timeout=dict(type="int", default=30),
    # aws_secretsmanager
    secret_id=dict(type="str", no_log=False),
    region=dict(type="str", fallback=(env_fallback, ["AWS_REGION", "AWS_DEFAULT_REGION"])),
    endpoint_url=dict(type="str", fallback=(env_fallback, ["AWS_ENDPOINT_URL_SECRETS_MANAGER",
                                                           "AWS_ENDPOINT_URL"])),
    profile=dict(type="str", fallback=(env_fallback, ["AWS_PROFILE"])),
)

# Each kind's required fields (its REQUIRED), and the AppRole fields when auth_method is approle.
STORE_REQUIRED_IF = [("kind", kind, tuple(cls.REQUIRED)) for kind, cls in STORES.items() if cls.REQUIRED] + [
    ("auth_method", "approle", ("role_id", "approle_secret_id")),
]


def _check_fields():
    for kind, cls in STORES.items():
        unknown = set(cls.FIELDS) - set(STORE_ARGSPEC)
        if unknown:
            raise ValueError("store kind %s declares fields STORE_ARGSPEC lacks: %s" % (kind, sorted(unknown)))


_check_fields()


def store_class(kind):
    """The Store subclass of ``kind``, or None (reading its declarations constructs nothing)."""
    return STORES.get(kind) if isinstance(kind, str) else None


def store_option_spec():
    """The `store` option of a module: a dict validated by STORE_ARGSPEC."""
    return dict(type="dict", required=True, options=STORE_ARGSPEC,
                required_if=STORE_REQUIRED_IF)


def validate_store_config(config, credential=None):
    """A ``store`` mapping checked against STORE_ARGSPEC, with defaults and environment
    fallbacks applied. Raises RotationError (step preflight) naming the bad fields."""
    if not isinstance(config, dict):
        raise RotationError("the store block must be a mapping, not %s" % type(config).__name__,
                            credential=credential, step="preflight",
                            fix="write store: {kind: vault_kv2, path: ...} in the credential's record.")
    validator = ArgumentSpecValidator(STORE_ARGSPEC, required_if=STORE_REQUIRED_IF)
    result = validator.validate(dict(config))
    if result.error_messages:
        raise RotationError("invalid store block: %s" % "; ".join(result.error_messages),
                            credential=credential, step="preflight",
                            fix="fix the credential's store block (see ansible-doc "
                                "credops.rotation.secret_store, option store).")
    return result.validated_parameters


def get_store(config, credential):
    """The store object for a credential's ``store`` mapping (validated here, so callers may
    pass the inventory's block as it is)."""
    kind = (config or {}).get("kind") if isinstance(config, dict) else None
    if kind not in STORES:
        raise RotationError("unknown store kind %r" % (kind,), credential=credential,
                            step="preflight",
                            fix="set store.kind to one of: %s." % ", ".join(sorted(STORES)))
    return STORES[kind](validate_store_config(config, credential), credential)


def missing_library(kind):
    """(library name, import traceback) if the kind's Python library is absent, else None."""
    cls = STORES.get(kind)
    return cls.missing_library() if cls else None
