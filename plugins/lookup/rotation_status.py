# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: rotation_status
author: credops.rotation maintainers (@credops)
version_added: 0.1.0
short_description: How old each credential is (from its store) and whether it is due for rotation
description:
  - For each credential of C(rotation_credentials), finds when its current value was made and
    returns one row of the due report (the same rows as the P(credops.rotation.due_report#filter) filter).
  - The age comes from the store's metadata when present, in this order. Vault/OpenBao KV v2 -
    C(custom_metadata.last_rotated), else the C(created_time) of the current KV version.
    AWS Secrets Manager - the C(last_rotated) metadata, else C(LastRotatedDate), else the creation
    time of the AWSCURRENT version. Failing all that, the inventory's C(last_rotated).
  - "Certificates: C(not_before)/C(not_after) of the certificate PEM kept in the store (only the
    CERTIFICATE block is parsed, never the key) and of the certificate served by every C(https) URL
    among the consumers' C(verify) endpoints (read with TLS verification off: an expired or
    untrusted certificate must still be reported). The earliest C(not_after) wins."
  - A store that cannot be read gives the row status C(unknown) and the error (never a secret value);
    the check_expiry playbook then fails.
  - Secret values are read by the store client only to find the certificate; they never leave this
    plugin.
options:
  _terms:
    description: Names of the credentials to report on; all of them when none is given.
    type: list
    elements: str
    required: false
  credentials:
    description:
      - The C(rotation_credentials) mapping (the inventory contract).
      - Defaults to the C(rotation_credentials) variable.
    type: dict
  now:
    description: The time of the report (ISO-8601); the current UTC time by default.
    type: str
  groups:
    description:
      - The inventory's C(groups), to expand consumer groups into hosts (each row's C(hosts)).
      - Defaults to the C(groups) variable.
    type: dict
  read_endpoints:
    description: Whether to connect to the consumers' C(https) verify URLs to read certificates.
    type: bool
    default: true
  endpoint_timeout:
    description: Seconds to wait for each TLS endpoint.
    type: float
    default: 5
  max_endpoints:
    description: At most this many distinct endpoints are read per certificate.
    type: int
    default: 20
  workers:
    description: How many stores are read at the same time.
    type: int
    default: 8
notes:
  - Use C(query()) (or C(lookup(..., wantlist=true))), the result is a list of rows.
  - Store connection settings come from each credential's C(store) mapping and the environment
    (C(VAULT_ADDR)/C(VAULT_TOKEN), the AWS SDK's variables), as for the rotation itself.
seealso:
  - plugin: credops.rotation.due_report
    plugin_type: filter
  - plugin: credops.rotation.validate_credentials
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Report every credential (the check_expiry role does this)
  ansible.builtin.set_fact:
    check_expiry_rows: "{{ query('credops.rotation.rotation_status', credentials=rotation_credentials) }}"

- name: Only two of them, as of a given time, without touching TLS endpoints
  ansible.builtin.debug:
    msg: "{{ query('credops.rotation.rotation_status', 'payment-gateway-api', 'billing-db',
             now='2025-01-01T00:00:00Z', read_endpoints=false) }}"
"""

RETURN = r"""
_raw:
  description: One row per credential, the most urgent first (overdue, unknown, warning, ok).
  type: list
  elements: dict
  contains:
    credential:
      description: The credential's name.
      type: str
    type:
      description: Its type.
      type: str
    risk:
      description: standard or high.
      type: str
    age_days:
      description: Whole days since the current value was made (null when unknown).
      type: int
    max_age_days:
      description: Its maximum age by the policy (or its override).
      type: int
    status:
      description: ok, warning, overdue or unknown.
      type: str
    due_at:
      description: When it is due (ISO-8601 UTC).
      type: str
    warning_at:
      description: When the 14-day warning starts.
      type: str
    last_rotated:
      description: When the current value was made (certificates - not_before).
      type: str
    source:
      description: "Where that time came from (e.g. C(vault_kv2:custom_metadata.last_rotated))."
      type: str
    reason:
      description: Why this status, in words.
      type: str
    consumers:
      description: The consumer names of the dependency map.
      type: list
      elements: str
    hosts:
      description: The inventory hosts of those consumers (groups expanded).
      type: list
      elements: str
    rotation_contact:
      description: Who owns the credential (null when the record names none).
      type: str
    findings:
      description:
        - Gaps of the record that block no report but must be fixed, for example no C(rotation_contact)
          (check_expiry lists them instead of refusing the inventory); empty when none.
      type: list
      elements: str
    not_after:
      description: Certificates - the earliest not_after seen.
      type: str
    error:
      description: Why the age is unknown (status unknown only).
      type: str
"""

import socket
import ssl
import warnings
from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleLookupError
from ansible.module_utils.six.moves.urllib.parse import urlsplit
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.credops.rotation.plugins.module_utils import _policy, _time, _x509
from ansible_collections.credops.rotation.plugins.module_utils._inventory import model as _model
from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.plugin_utils.record_hosts import record_hosts

display = Display()


def peer_certificate_dates(url, timeout=5.0):
    """not_before/not_after/subject/serial of the certificate an https URL presents.

    Verification is off on purpose: this reads the dates of whatever is served, expired or
    untrusted included (it is a report, nothing is sent over the connection).
    """
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("not an https URL: %s" % url)
    port = parts.port or 443
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    server_name = parts.hostname if not _is_ip(parts.hostname) else None
    with socket.create_connection((parts.hostname, port), timeout=timeout) as sock:
        with context.wrap_socket(sock, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    if not der:
        raise ValueError("%s presented no certificate" % url)
    return _x509.certificate_dates(der)


def _is_ip(host):
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except (OSError, ValueError):
            continue
    return False


def age_from_store(read, kind):
    """(last_rotated, source) from a store's read() result, in the contract's order of trust.

    KV v2: custom_metadata.last_rotated, else the current version's created_time. AWS: the
    last_rotated tag, else LastRotatedDate, else the AWSCURRENT version's CreatedDate (the
    store's read() has already chosen; the source is worked out from what it returned).
    """
    metadata = read.get("metadata") or {}
    created = read.get("created_time")
    last = read.get("last_rotated")
    if metadata.get("last_rotated"):
        return metadata["last_rotated"], "%s:%s" % (
            kind, "custom_metadata.last_rotated" if kind == "vault_kv2" else "tag last_rotated")
    if kind == "aws_secretsmanager" and last and last != created:
        return last, "aws_secretsmanager:%s" % ("LastRotatedDate" if created else "LastChangedDate")
    if created:
        return created, "%s:%s" % (kind, "created_time" if kind == "vault_kv2" else "AWSCURRENT CreatedDate")
    if last:
        return last, "%s:last_rotated" % kind
    return None, None


_CERT_KEYS = ("certificate", "cert", "certificate_pem", "tls_crt", "tls.crt")


def _pem_in(mapping):
    for key in _CERT_KEYS:
        value = (mapping or {}).get(key)
        if isinstance(value, str) and "BEGIN CERTIFICATE" in value:
            return value
    return None


def certificate_from_store(read):
    """The certificate dates found in a store's read() result, or None.

    Looked for, in order: not_after/not_before in the metadata; a certificate PEM in the
    metadata, in the non-secret data, in the secret's other data keys (KV v2: the key the
    runbook keeps the certificate in, e.g. ``certificate``), and in the value itself when it is
    a PEM bundle. Only the CERTIFICATE block is ever parsed; nothing else is kept.
    """
    metadata = read.get("metadata") or {}
    if metadata.get("not_after"):
        return {"not_before": metadata.get("not_before"), "not_after": metadata["not_after"]}
    raw = read.get("_raw") if isinstance(read.get("_raw"), dict) else {}
    for holder in (metadata, read.get("data"), raw.get("data"), read):
        pem = _pem_in(holder if isinstance(holder, dict) else {})
        if pem:
            return _x509.certificate_dates(pem)
    current = read.get("current")
    if isinstance(current, str) and "BEGIN CERTIFICATE" in current:
        return _x509.certificate_dates(current)
    return None


def https_endpoints(name, record, inventory, hostvars=None, limit=20):
    """Distinct https verify URLs of a credential's consumers, templated per consumer host
    where the URL depends on the host (``{{ inventory_hostname }}``)."""
    urls = []
    for index, consumer in enumerate(record.get("consumers") or []):
        verify = consumer.get("verify") if isinstance(consumer, dict) else None
        if not isinstance(verify, dict) or not isinstance(verify.get("url"), str):
            continue
        candidates = []
        if hostvars is not None and consumer.get("kind") in ("systemd", "batch"):
            # the record was templated for the host running the report: ask each consumer host
            for host in _model.consumer_hosts(consumer, inventory):
                try:
                    candidates.append(hostvars[host]["rotation_credentials"][name]["consumers"][index]["verify"]["url"])
                except Exception:  # host without the variable, or a template that fails there
                    continue
        if not candidates:
            candidates = [verify["url"]]
        for url in candidates:
            if isinstance(url, str) and url.startswith("https://") and url not in urls:
                urls.append(url)
    return urls[:limit]


def collect(name, record, get_store, now=None, endpoints=(), endpoint_timeout=5.0, peer=peer_certificate_dates):
    """What the report needs to know about one credential: an entry for ``_policy.due_report``."""
    entry = {"credential": name, "record": record}
    store = record.get("store") or {}
    kind = store.get("kind")
    read = None
    try:
        read = get_store(store, name).read() or {}
    except RotationError as exc:  # names the store and the fix; the credential is the row's
        entry["error"] = exc.message.rstrip(".") + "." + (" Fix: %s" % exc.fix if exc.fix else "")
    except Exception as exc:  # a library error the store did not wrap
        entry["error"] = "store %s: %s: %s" % (kind, type(exc).__name__, _model.first_line(exc))
    if read is not None and "error" not in entry:
        last, source = age_from_store(read, kind)
        absent = read.get("exists") is False or (
            "exists" not in read and read.get("current") is None and read.get("version") is None and last is None)
        if last is None and record.get("last_rotated"):
            last, source = record.get("last_rotated"), "inventory:last_rotated"
        where = store.get("path") or store.get("secret_id")
        if absent and last is None:
            entry["error"] = "store %s: no secret at %s, and no last_rotated in the inventory" % (kind, where)
        elif absent:
            entry.setdefault("notes", []).append("no secret at %s in the store yet" % where)
        entry["last_rotated"], entry["source"] = last, source
        if record.get("type") == "certificate":
            found = []
            try:
                dates = certificate_from_store(read)
                if dates:
                    found.append((dates, "%s:certificate" % kind))
            except Exception as exc:
                entry.setdefault("notes", []).append("store certificate unreadable: %s" % _model.first_line(exc))
            for url in endpoints:
                try:
                    found.append((peer(url, endpoint_timeout), "endpoint:%s" % url))
                except Exception as exc:
                    entry.setdefault("notes", []).append("%s: %s" % (url, _model.first_line(exc)))
            found = [f for f in found if f[0] and f[0].get("not_after")]
            if found:
                dates, source = min(found, key=lambda f: _time.parse_time(f[0]["not_after"]))
                entry["not_before"], entry["not_after"] = dates.get("not_before"), dates["not_after"]
                entry["source"] = source
                entry.pop("error", None)
    elif record.get("last_rotated") and "error" not in entry:
        entry["last_rotated"], entry["source"] = record["last_rotated"], "inventory:last_rotated"
    return entry


def report(credentials, names=None, now=None, groups=None, get_store=None, hostvars=None, read_endpoints=True,
           endpoint_timeout=5.0, max_endpoints=20, workers=8, peer=peer_certificate_dates):
    """The due rows for ``credentials`` (plain data), reading every store ``workers`` at a time."""
    now = _time.parse_time(now) if now else _time.now()
    inventory = _model.Inventory(groups)
    names = list(names or sorted(credentials))
    unknown = [n for n in names if n not in credentials]
    if unknown:
        raise AnsibleLookupError("rotation_status: no credential named %s in rotation_credentials"
                                 % ", ".join(unknown))

    # Templating (hostvars) happens here, in this thread; the pool only talks to the stores.
    jobs = []
    for name in names:
        record = credentials[name] if isinstance(credentials[name], dict) else {}
        endpoints = []
        if read_endpoints and record.get("type") == "certificate":
            endpoints = https_endpoints(name, record, inventory, hostvars, max_endpoints)
        jobs.append((name, record, endpoints))

    def one(job):
        name, record, endpoints = job
        entry = collect(name, record, get_store, now, endpoints, endpoint_timeout, peer)
        entry["hosts"] = record_hosts(record, inventory)
        return entry

    if workers and workers > 1 and len(jobs) > 1:
        # Nothing the pool's threads do may write to stdout or stderr: in a worker that
        # ansible-core (2.17, 2.18) forked while holding its display lock, a write from any
        # thread but the main one waits for that lock forever. So the stores' libraries are
        # imported here first (importing requests warns about SOCKS support), and a warning
        # raised in a thread is recorded, not printed.
        _load_store_libraries(set((record.get("store") or {}).get("kind") for _name, record, _e in jobs))
        with warnings.catch_warnings(record=True) as caught:
            with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
                entries = list(pool.map(one, jobs))
        for warning in caught:
            display.vvvv("rotation_status: %s: %s" % (warning.category.__name__, warning.message))
    else:
        entries = [one(job) for job in jobs]
    rows = _policy.due_report(entries, now)
    notes = dict((e["credential"], e.get("notes")) for e in entries if e.get("notes"))
    for row in rows:
        if row["credential"] in notes:
            row["reason"] += "; " + "; ".join(notes[row["credential"]])
    return rows


def _load_store_libraries(kinds):
    """Import the Python library of each store kind (hvac, boto3) in the calling thread."""
    try:
        from ansible_collections.credops.rotation.plugins.module_utils._stores.registry import missing_library
    except ImportError:
        return
    for kind in sorted(k for k in kinds if isinstance(k, str)):
        missing_library(kind)


def _registry_get_store(config, credential):
    try:
        from ansible_collections.credops.rotation.plugins.module_utils._stores.registry import get_store
    except ImportError as exc:
        raise RotationError("the store support of the collection is missing (%s)" % exc, credential=credential,
                            step="store", fix="install the complete credops.rotation collection")
    return get_store(config, credential)


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        credentials = self.get_option("credentials")
        if credentials is None:
            credentials = variables.get("rotation_credentials")
        if not isinstance(credentials, dict):
            raise AnsibleLookupError("rotation_status: rotation_credentials is not defined or not a mapping")
        problems = []
        credentials = _model.resolve(credentials, "", problems)
        if problems:
            raise AnsibleLookupError("rotation_status: %s (run the preflight validation first)" % "; ".join(
                "%s cannot be templated (%s)" % (path, _model.first_line(exc)) for path, exc in problems))
        groups = self.get_option("groups")
        if groups is None:
            groups = variables.get("groups")
        try:
            return report(credentials, names=[str(t) for t in terms] or None, now=self.get_option("now"),
                          groups=_model.resolve(groups) if groups is not None else None,
                          get_store=_registry_get_store, hostvars=variables.get("hostvars"),
                          read_endpoints=self.get_option("read_endpoints"),
                          endpoint_timeout=self.get_option("endpoint_timeout"),
                          max_endpoints=self.get_option("max_endpoints"), workers=self.get_option("workers"))
        except ValueError as exc:
            raise AnsibleLookupError("rotation_status: %s (run the preflight validation first)" % exc)
