# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place an hvac client is built, for every Vault / OpenBao kind (the issuer
``vault_pki``, the store ``vault_kv2``).

The options are named as community.hashi_vault names them, so an operator who knows that
collection knows these: ``url``, ``token``, ``namespace``, ``auth_method`` (``token`` or
``approle``), ``role_id``, ``secret_id``, ``mount_point`` (where the auth method is mounted),
``ca_cert``, ``validate_certs``, ``timeout``. A kind whose inventory names differ (the store's
``approle_secret_id``, the issuer's ``ca_path``) maps them onto these names.

hvac is imported on first use (``_lazy``): a run of another kind does not pay for it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.credops.rotation.plugins.module_utils._clients._common import (
    env_default,
    verify_setting,
)
from ansible_collections.credops.rotation.plugins.module_utils._lazy import LazyModule

hvac = LazyModule("hvac")
hvac_exceptions = LazyModule("hvac.exceptions")

#: the connection and auth options, as community.hashi_vault names them
VAULT_OPTIONS = ("url", "token", "namespace", "auth_method", "role_id", "secret_id", "mount_point",
                 "ca_cert", "validate_certs", "timeout")


def vault_url(url=None):
    """The server's address: ``url``, else VAULT_ADDR, else BAO_ADDR."""
    return env_default(url, "VAULT_ADDR", "BAO_ADDR")


def vault_token(token=None):
    """The token: ``token``, else VAULT_TOKEN, else BAO_TOKEN."""
    return env_default(token, "VAULT_TOKEN", "BAO_TOKEN")


def vault_namespace(namespace=None):
    """The namespace: ``namespace``, else VAULT_NAMESPACE, else BAO_NAMESPACE."""
    return env_default(namespace, "VAULT_NAMESPACE", "BAO_NAMESPACE")


def vault_client(options):
    """An hvac client for ``options`` (named as in VAULT_OPTIONS), not logged in yet: see
    ``vault_login``. Defaults: validate_certs true, timeout 30 seconds."""
    return hvac.Client(url=options.get("url"), token=options.get("token"),
                       namespace=options.get("namespace") or None,
                       verify=verify_setting(options.get("validate_certs"), options.get("ca_cert")),
                       timeout=options.get("timeout") or 30)


def vault_login(client, options):
    """Log ``client`` in by ``options["auth_method"]``: ``approle`` with ``role_id`` and
    ``secret_id`` (at ``mount_point``, hvac's default ``approle`` when unset); ``token`` (or
    unset) needs no login. Returns the token the login got (a secret), or None. Library
    errors (hvac, requests) are left to the caller, which knows what to say about them."""
    if options.get("auth_method") != "approle":
        return None
    kwargs = dict(role_id=options.get("role_id"), secret_id=options.get("secret_id"))
    if options.get("mount_point"):
        kwargs["mount_point"] = options["mount_point"]
    client.auth.approle.login(**kwargs)
    return client.token
