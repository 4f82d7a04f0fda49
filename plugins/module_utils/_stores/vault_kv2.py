# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HashiCorp Vault / OpenBao KV version 2, through hvac.

Layout at ``<mount>/<path>`` (the inventory contract, "What the store holds"):

- data: ``<field>`` = the current value, ``key_id`` = the issuer's id for it; only while a
  rotation is in flight ``previous_<field>`` and ``previous_key_id``; ``rotated_at``,
  ``rotated_by``, ``rotation_verified_at`` (ISO-8601 UTC), ``rolled_back_at`` after a
  rollback; and ``rotation_phase``, a copy of the phase written in the same check-and-set
  write as the value, so the phase can never disagree with the value it describes (two runs
  racing, or a run killed between the data write and the metadata write). Any other keys
  of the secret (a username next to a password, ...) are kept untouched.
- custom_metadata: ``rotation_phase``, ``consumers`` (comma-separated), ``last_rotated``,
  and any other non-secret metadata the playbooks record.

Every data write is a new KV version made with check-and-set (``cas`` = the version read,
0 when the secret does not exist yet), so of two concurrent runs only one can write. The
new value goes straight into ``<field>`` (``pending_is_current``): consumers reading the
store see it at once; ``previous_<field>`` keeps the old one until it is revoked.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.credops.rotation.plugins.module_utils._clients.vault import (
    hvac,
    hvac_exceptions,
    vault_client,
    vault_login,
    vault_token,
    vault_url,
)
from ansible_collections.credops.rotation.plugins.module_utils._errors import scrub
from ansible_collections.credops.rotation.plugins.module_utils._lazy import LazyModule
from ansible_collections.credops.rotation.plugins.module_utils._stores._base import (
    DATA_FIELDS,
    IN_FLIGHT,
    Store,
    empty_state,
    fit_utf8,
)
from ansible_collections.credops.rotation.plugins.module_utils._time import normalize_time

# imported on first use: a module run that uses another store kind does not pay for it
requests = LazyModule("requests")


DEFAULT_FIELD = "value"
RESERVED_DATA = ("key_id", "previous_key_id", "rotation_phase") + DATA_FIELDS


class VaultKV2Store(Store):
    kind = "vault_kv2"
    FIELDS = ("url", "auth_method", "token", "role_id", "approle_secret_id", "approle_mount", "namespace", "mount",
              "path", "field", "validate_certs", "ca_cert", "timeout")
    REQUIRED = ("path",)
    DEFAULTS = dict(field=DEFAULT_FIELD, mount="secret")

    @classmethod
    def preflight(cls, report, path, block, check):
        check.check_url(report, path + ".url", block.get("url"), required=False, what="Vault/OpenBao address",
                        secret_travels="the store token and the secret")
        mount = block.get("mount")
        if mount is not None and (not check.is_str(mount) or mount.strip("/") != mount):
            report.error(path + ".mount", "%s is not a mount name" % check.show(mount),
                         "write the KV v2 mount without slashes, e.g. `mount: secret`")
        secret_path = block.get("path")
        if check.required_str(report, path + ".path", secret_path,
                              "give the secret's path in the mount, e.g. `path: api-credentials/payment-gateway-api`"):
            if secret_path.startswith("/") or secret_path.endswith("/"):
                report.error(path + ".path", "%s has a leading or trailing '/'" % check.show(secret_path),
                             "write the path without them, e.g. api-credentials/payment-gateway-api")
            elif secret_path.split("/")[0] in ("data", "metadata"):
                report.error(path + ".path", "%s starts with the KV v2 API's %s/ segment" % (
                    check.show(secret_path), secret_path.split("/")[0]),
                    "give the logical path without data/ or metadata/ (the store adds it)")
    library = "hvac"
    pending_is_current = True

    def __init__(self, config, credential):
        super(VaultKV2Store, self).__init__(config, credential)
        cfg = self.config
        self.url = vault_url(cfg.get("url"))
        self.mount = (cfg.get("mount") or "secret").strip("/")
        self.path = (cfg.get("path") or "").strip("/")
        self.field = cfg.get("field") or DEFAULT_FIELD
        self._client = None
        if not self.path:
            raise self.error("store.path is not set",
                             fix="set store.path to the secret's path under the mount, "
                                 "e.g. api-credentials/%s." % (credential or "NAME"))
        if self.field in RESERVED_DATA or self.field.startswith("previous_"):
            raise self.error("store.field '%s' collides with a field the rotation keeps" % self.field,
                             fix="choose another field name (default: value).")
        if not self.url:
            raise self.error("no server address",
                             fix="set store.url or the VAULT_ADDR environment variable.")

    @staticmethod
    def missing_library():
        """("hvac", traceback) when hvac cannot be imported, else None."""
        error = hvac.import_error()
        return ("hvac", error) if error else None

    def describe(self):
        return "%s/%s" % (self.mount, self.path)

    # -- connection -----------------------------------------------------------------------
    def _secrets(self):
        cfg = self.config
        token = cfg.get("token")
        for name in ("approle_secret_id", "token"):
            if cfg.get(name):
                yield cfg[name]
        if token is None:
            yield os.environ.get("VAULT_TOKEN")

    def client(self):
        if self._client is not None:
            return self._client
        self.client_settings(hvac, "hvac")
        cfg = self.config
        method = cfg.get("auth_method") or "token"
        token = None
        if method == "token":
            token = vault_token(cfg.get("token"))
            if not token:
                raise self.error("no token to authenticate with",
                                 fix="set store.token or the VAULT_TOKEN environment variable, "
                                     "or use auth_method=approle.")
        elif method == "approle" and (not cfg.get("role_id") or not cfg.get("approle_secret_id")):
            raise self.error("auth_method approle needs role_id and approle_secret_id",
                             fix="set store.role_id and store.approle_secret_id (or "
                                 "VAULT_ROLE_ID / VAULT_SECRET_ID).")
        # the store's names on community.hashi_vault's: approle_secret_id is secret_id (the
        # store's secret_id is the AWS secret's name), approle_mount is mount_point
        options = dict(url=self.url, token=token, namespace=cfg.get("namespace"), auth_method=method,
                       role_id=cfg.get("role_id"), secret_id=cfg.get("approle_secret_id"),
                       mount_point=cfg.get("approle_mount") or "approle",
                       validate_certs=cfg.get("validate_certs"), ca_cert=cfg.get("ca_cert"),
                       timeout=cfg.get("timeout"))
        client = vault_client(options)
        self._call("logging in with AppRole", vault_login, client, options)
        self._client = client
        return client

    def _policy_hint(self):
        return ('the token\'s policy needs: path "%s/data/%s" { capabilities = ["create", '
                '"read", "update"] } and path "%s/metadata/%s" { capabilities = ["read", '
                '"update"] }; or the token expired: renew it or set a fresh VAULT_TOKEN.'
                % (self.mount, self.path, self.mount, self.path))

    def _call(self, what, func, *args, **kwargs):
        """Run one hvac call, turning library errors into a RotationError."""
        secrets = list(self._secrets()) + list(kwargs.pop("_secrets", ()))
        none_on_404 = kwargs.pop("_none_on_404", False)
        try:
            return func(*args, **kwargs)
        except hvac_exceptions.InvalidPath as exc:
            if none_on_404 and not any("no handler for route" in str(e) for e in (exc.errors or ())):
                return None
            raise self.error("nothing at %s while %s: %s" % (self.describe(), what, scrub(exc, secrets)),
                             fix="check that a KV version 2 engine is mounted at '%s' "
                                 "(vault secrets enable -path=%s kv-v2)." % (self.mount, self.mount))
        except hvac_exceptions.Forbidden:
            raise self.error("permission denied while %s" % what, fix=self._policy_hint())
        except hvac_exceptions.Unauthorized:
            raise self.error("not authenticated while %s" % what,
                             fix="check the token / AppRole credentials (VAULT_TOKEN, "
                                 "store.role_id, store.approle_secret_id).")
        except hvac_exceptions.VaultDown:
            raise self.error("the server at %s is sealed or unavailable while %s" % (self.url, what),
                             fix="unseal the server or point store.url at an active node.")
        except hvac_exceptions.InvalidRequest as exc:
            text = scrub(exc, secrets)
            if "check-and-set" in text:
                raise self.error("another run changed the secret while %s (check-and-set "
                                 "failed)" % what,
                                 fix="re-run: the rotation continues from what the store holds now.")
            raise self.error("the server refused %s: %s" % (what, text),
                             fix="check store.mount is a KV version 2 engine and store.path.")
        except hvac_exceptions.VaultError as exc:
            raise self.error("error while %s: %s" % (what, scrub(exc, secrets)),
                             fix="see the server's log; re-run once it is healthy.")
        except requests.exceptions.SSLError as exc:
            raise self.error("TLS verification failed for %s while %s: %s"
                             % (self.url, what, scrub(exc, secrets)),
                             fix="set store.ca_cert (or VAULT_CACERT) to the CA bundle that "
                                 "signed the server's certificate.")
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise self.error("cannot reach the server at %s while %s (%s)"
                             % (self.url, what, type(exc).__name__),
                             fix="check store.url / VAULT_ADDR, that Vault/OpenBao is running "
                                 "and reachable from this host.")
        except requests.exceptions.RequestException as exc:
            raise self.error("request failed while %s: %s" % (what, scrub(exc, secrets)),
                             fix="check store.url / VAULT_ADDR.")

    # -- read -----------------------------------------------------------------------------
    def _load(self):
        client = self.client()
        kv = client.secrets.kv.v2
        raw = dict(exists=False, version=0, data=None, custom_metadata={})
        meta = self._call("reading the secret's metadata", kv.read_secret_metadata,
                          path=self.path, mount_point=self.mount, _none_on_404=True)
        if meta is None:  # no secret yet: the first rotation
            state = empty_state()
            state["_raw"] = raw
            return state
        md = (meta or {}).get("data") or {}
        version = int(md.get("current_version") or 0)
        custom = dict(md.get("custom_metadata") or {})
        vinfo = (md.get("versions") or {}).get(str(version)) or {}
        created = normalize_time(vinfo.get("created_time"))
        data = None
        if version and not vinfo.get("deletion_time") and not vinfo.get("destroyed"):
            resp = self._call("reading the secret", kv.read_secret_version, path=self.path,
                              version=version, mount_point=self.mount,
                              raise_on_deleted_version=True)
            data = dict(((resp or {}).get("data") or {}).get("data") or {})
        raw.update(exists=True, version=version, data=data, custom_metadata=custom)
        return self._state(raw, created)

    def _state(self, raw, created_time):
        data = raw.get("data") or {}
        custom = dict(raw.get("custom_metadata") or {})
        field = self.field
        phase = data.get("rotation_phase") or custom.get("rotation_phase") or None
        metadata = dict((k, v) for k, v in custom.items() if k != "rotation_phase")
        if (data.get("rotation_phase") and custom.get("rotation_phase") != data["rotation_phase"]
                and data["rotation_phase"] == "finished" and created_time):
            # the run that finished was stopped before it wrote the metadata: the version
            # that says "finished" is when it happened
            metadata["last_rotated"] = created_time
        in_flight = phase in IN_FLIGHT
        state = empty_state()
        state.update(
            exists=bool(raw.get("exists")),
            current=data.get(field), current_id=data.get("key_id"),
            previous=data.get("previous_" + field), previous_id=data.get("previous_key_id"),
            pending=data.get(field) if in_flight else None,
            pending_id=data.get("key_id") if in_flight else None,
            phase=phase,
            inflight="current" if in_flight else None,
            metadata=metadata,
            data=dict((k, str(data[k])) for k in DATA_FIELDS if data.get(k) is not None),
            created_time=created_time,
            # every write makes a KV version, so the version's created_time is only the time
            # of the last write; rotated_at is when the value in <field> was written
            last_rotated=(normalize_time(metadata.get("last_rotated")) or normalize_time(data.get("rotated_at"))
                          or created_time),
            version=raw.get("version") or None,
        )
        state["_raw"] = raw
        return state

    # -- write ----------------------------------------------------------------------------
    def _render(self, before, after):
        raw = before.get("_raw") or {}
        data = dict(raw.get("data") or {})
        field = self.field

        def put(key, value):
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value

        put(field, after.get("current"))
        put("key_id", after.get("current_id"))
        put("previous_" + field, after.get("previous"))
        put("previous_key_id", after.get("previous_id"))
        put("rotation_phase", after.get("phase"))
        for key in DATA_FIELDS:
            data.pop(key, None)
        data.update(after.get("data") or {})
        # Vault refuses custom_metadata values over 512 bytes: a long note (a rollback reason)
        # is cut rather than failing the step
        custom = dict((k, fit_utf8(str(v), 512)) for k, v in (after.get("metadata") or {}).items())
        if after.get("phase"):
            custom["rotation_phase"] = after["phase"]
        old = raw.get("data")
        if (old is not None and "rotation_phase" not in old
                and data.get("rotation_phase") == (raw.get("custom_metadata") or {}).get("rotation_phase")
                and dict((k, v) for k, v in data.items() if k != "rotation_phase") == old):
            # a secret written by other tools: its phase is only in custom_metadata and did not
            # change; do not make a KV version just to copy it into the data
            data = dict(old)
        return data, custom

    def _in_sync(self, before, after):
        raw = before.get("_raw") or {}
        if not raw.get("exists") or raw.get("data") is None:
            return False
        data, custom = self._render(before, after)
        return data == raw.get("data") and custom == (raw.get("custom_metadata") or {})

    def _apply(self, before, after):
        raw = before.get("_raw") or {}
        kv = self.client().secrets.kv.v2
        data, custom = self._render(before, after)
        secrets = [after.get("current"), after.get("previous"), after.get("pending")]
        if data != raw.get("data"):
            self._call("writing the secret (check-and-set at version %d)" % (raw.get("version") or 0),
                       kv.create_or_update_secret, path=self.path, secret=data,
                       cas=int(raw.get("version") or 0), mount_point=self.mount, _secrets=secrets)
        if custom != (raw.get("custom_metadata") or {}):
            self._call("writing the secret's custom_metadata", self.client().adapter.post,
                       "/v1/%s/metadata/%s" % (self.mount, self.path),
                       json={"custom_metadata": custom})
