# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kind: vault_pki: a certificate and its private key from a Vault / OpenBao PKI role.

The secret is the private key (PEM); the certificate, chain, serial and validity are
non-secret facts returned in ``info``. The id is the certificate's serial; revoke is the
PKI revoke by serial (which puts it on the CRL). Auth: a token (``token``, default env
VAULT_TOKEN) or AppRole (``role_id`` / ``secret_id``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.credops.rotation.plugins.module_utils._clients.vault import (
    hvac,
    hvac_exceptions,
    vault_client,
    vault_login,
    vault_namespace,
    vault_token,
    vault_url,
)
from ansible_collections.credops.rotation.plugins.module_utils._lazy import LazyModule
from ansible_collections.credops.rotation.plugins.module_utils._issuers._base import Issuer
from ansible_collections.credops.rotation.plugins.module_utils._time import format_time, from_timestamp
from ansible_collections.credops.rotation.plugins.module_utils._x509 import pem_validity

requests_exceptions = LazyModule("requests.exceptions")

# A Vault duration (seconds, or e.g. 2160h, 90d, 1h30m).
_TTL = re.compile(r"^(\d+|(\d+[smhd])+)$")


def pki_cert_url(block, what):
    """The PKI's public read of one certificate (a serial, in Vault's ``aa:bb`` or ``aa-bb``
    spelling) or of ``ca_chain``: ``url`` (default VAULT_ADDR here) and ``mount`` (default pki)."""
    base = (block.get("url") or os.environ.get("VAULT_ADDR") or "").rstrip("/")
    mount = (block.get("mount") or "pki").strip("/")
    return "%s/v1/%s/cert/%s" % (base, mount, str(what).replace(":", "-"))


ARGSPEC = dict(
    url=dict(type="str"),
    token=dict(type="str", no_log=True),
    auth_method=dict(type="str", choices=["token", "approle"]),
    role_id=dict(type="str"),
    secret_id=dict(type="str", no_log=True),
    namespace=dict(type="str"),
    mount=dict(type="str"),
    role=dict(type="str"),
    common_name=dict(type="str"),
    alt_names=dict(type="list", elements="str"),
    ip_sans=dict(type="list", elements="str"),
    ttl=dict(type="str"),
)


class VaultPkiIssuer(Issuer):
    kind = "vault_pki"
    ARGSPEC = ARGSPEC
    TYPES = ("certificate",)
    REQUIRED = ("kind", "mount", "role", "common_name", "ttl")

    @classmethod
    def preflight(cls, report, path, block, check):
        for field, example in (("mount", "pki"), ("role", "web-server"), ("common_name", "api.example.org")):
            check.required_str(report, "%s.%s" % (path, field), block.get(field),
                               "set it, e.g. `%s: %s`" % (field, example))
        ttl = block.get("ttl")
        if ttl in (None, ""):
            report.error(path + ".ttl", "missing", "give the certificate lifetime, e.g. `ttl: 2160h` (90 days)")
        elif not ((check.is_int(ttl) and ttl > 0)
                  or (isinstance(ttl, str) and _TTL.match(ttl) and ttl.strip("0smhd") != "")):
            report.error(path + ".ttl", "%s is not a duration" % check.show(ttl),
                         "write seconds or a Vault duration such as 2160h, 90d")
        url = block.get("url")
        if url is not None:
            check.check_url(report, path + ".url", url, what="Vault address")

    @classmethod
    def stored_facts(cls, key_id, info):
        """The new certificate's validity and serial (for the due check), and its public half
        beside the private key (the value): never secret."""
        dates = dict(not_before=info.get("not_before"), not_after=info.get("not_after"))
        return dict(metadata=dict(dates, certificate_serial=key_id),
                    data=dict(dates, certificate=info.get("certificate"),
                              issuing_ca="\n".join(info.get("ca_chain") or [])))

    @classmethod
    def public_values(cls, info):
        return dict(cert=info.get("certificate"), ca="\n".join(info.get("ca_chain") or []) or None)

    @classmethod
    def previous_record(cls, block, key_id):
        """The PKI's public read of the previous certificate by serial (no token is sent)."""
        if key_id in (None, ""):
            return None
        namespace = block.get("namespace")
        return dict(url=pki_cert_url(block, key_id),
                    headers={"X-Vault-Namespace": namespace} if namespace else {},
                    validate_certs=block["validate_certs"] if "validate_certs" in block else True,
                    ca_path=block.get("ca_path"))

    def __init__(self, config, credential):
        super(VaultPkiIssuer, self).__init__(config, credential)
        if hvac.import_error():
            raise self.error(missing_required_lib("hvac"), step="preflight",
                             fix="install hvac where the module runs (pip install hvac).")
        self.url = vault_url(self.config.get("url"))
        if not self.url:
            raise self.error("issuer.url is not set and neither is VAULT_ADDR.", step="preflight",
                             fix="set issuer.url or VAULT_ADDR where the module runs.")
        self.mount = (self.config.get("mount") or "pki").strip("/")
        self.role = self.require("role")
        self.common_name = self.require("common_name")
        self.auth_method = self.config.get("auth_method") or (
            "approle" if self.config.get("role_id") else "token")
        self.token = vault_token(self.config.get("token"))
        if self.auth_method == "approle":
            self.require("role_id")
            self.require("secret_id")
        elif not self.token:
            raise self.error("no Vault token: issuer.token is not set and neither is VAULT_TOKEN.",
                             step="preflight", fix="set issuer.token or VAULT_TOKEN, or use AppRole "
                             "(issuer.role_id and issuer.secret_id).")
        self._secrets = [self.token, self.config.get("secret_id")]
        self._client = None

    def _vault(self, step):
        if self._client is None:
            ca_path = self.config.get("ca_path")
            options = dict(url=self.url, token=self.token, namespace=vault_namespace(self.config.get("namespace")),
                           auth_method=self.auth_method, role_id=self.config.get("role_id"),
                           secret_id=self.config.get("secret_id"),
                           # a CA bundle given is verified against, even with validate_certs false
                           ca_cert=ca_path, validate_certs=True if ca_path else self.config.get("validate_certs"),
                           timeout=float(self.config.get("timeout") or 10))
            client = vault_client(options)
            try:
                token = vault_login(client, options)
            except Exception as exc:  # hvac and requests errors alike
                raise self._vault_error(exc, step, "log in with AppRole")
            if token is not None:
                self._secrets.append(token)
            self._client = client
        return self._client

    def _vault_error(self, exc, step, action):
        fix = "see the Vault error above."
        if isinstance(exc, hvac_exceptions.Forbidden):
            fix = ("the token needs update on %s/issue/%s and %s/revoke, and read on %s/cert/*."
                   % (self.mount, self.role, self.mount, self.mount))
        elif isinstance(exc, hvac_exceptions.InvalidPath):
            fix = "check issuer.mount ('%s') and issuer.role ('%s')." % (self.mount, self.role)
        elif isinstance(exc, hvac_exceptions.InvalidRequest):
            fix = ("check issuer.common_name, alt_names, ip_sans and ttl against what PKI role '%s' allows."
                   % self.role)
        elif isinstance(exc, hvac_exceptions.VaultDown):
            fix = "Vault is sealed or in maintenance: unseal it, then re-run."
        elif isinstance(exc, requests_exceptions.RequestException):
            fix = "check issuer.url (or VAULT_ADDR), that Vault is up, and the TLS options (validate_certs, ca_path)."
        return self.error("Vault at %s refused to %s: %s" % (self.url, action, " ".join(str(exc).split())),
                          step=step, fix=fix, secrets=self._secrets)

    def _read(self, serial, step):
        """The cert record, or None when the serial is unknown (never issued, or tidied)."""
        try:
            return self._vault(step).secrets.pki.read_certificate(serial, mount_point=self.mount).get("data") or {}
        except hvac_exceptions.InvalidPath:
            return None
        except Exception as exc:
            raise self._vault_error(exc, step, "read certificate %s" % serial)

    # --- the interface ---------------------------------------------------------------------
    def create(self):
        common_name = self.common_name
        params = {}
        if self.config.get("alt_names"):
            params["alt_names"] = ",".join(self.config["alt_names"])
        if self.config.get("ip_sans"):
            params["ip_sans"] = ",".join(self.config["ip_sans"])
        if self.config.get("ttl"):
            params["ttl"] = self.config["ttl"]
        try:
            data = self._vault("issue").secrets.pki.generate_certificate(
                name=self.role, common_name=common_name, extra_params=params, mount_point=self.mount)["data"]
        except Exception as exc:
            raise self._vault_error(exc, "issue", "issue a certificate for %s from %s/issue/%s"
                                    % (common_name, self.mount, self.role))
        not_before, not_after = pem_validity(data.get("certificate"))
        if not_after is None and data.get("expiration"):
            not_after = from_timestamp(data["expiration"])
        if not_before is None and isinstance(data.get("not_before"), int):
            not_before = from_timestamp(data["not_before"])
        info = dict(certificate=data.get("certificate"), issuing_ca=data.get("issuing_ca"),
                    ca_chain=data.get("ca_chain") or [], serial=data.get("serial_number"),
                    not_before=format_time(not_before), not_after=format_time(not_after),
                    private_key_type=data.get("private_key_type"), common_name=common_name)
        return dict(id=data.get("serial_number"), secret=data.get("private_key"), info=info)

    def revoke(self, key_id, secret=None, force=False):
        if not key_id:
            raise self.error("revoking needs the certificate serial.", step="revoke",
                             fix="pass key_id: the serial (the store keeps it as key_id / previous_key_id).")
        record = self._read(key_id, "revoke")
        if record is None or record.get("revocation_time"):
            return False
        try:
            self._vault("revoke").secrets.pki.revoke_certificate(key_id, mount_point=self.mount)
        except Exception as exc:
            raise self._vault_error(exc, "revoke", "revoke certificate %s" % key_id)
        return True

    def exists(self, key_id):
        record = self._read(key_id, "check")
        if record is None or record.get("revocation_time"):
            return False
        not_after = pem_validity(record.get("certificate"))[1]
        return not_after is None or not_after.timestamp() > time.time()
