# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn the dependency map into the work of one run, host by host.

Each filter is documented in the YAML file of its own name beside this one
(``ansible-doc -t filter credops.rotation.NAME``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


from ansible_collections.credops.rotation.plugins.module_utils import _policy, _time
from ansible_collections.credops.rotation.plugins.module_utils._consumers.registry import consumer_class
from ansible_collections.credops.rotation.plugins.module_utils._issuers import vault_pki
from ansible_collections.credops.rotation.plugins.module_utils._stores._base import IN_FLIGHT
from ansible_collections.credops.rotation.plugins.module_utils._x509 import pem_validity


def _hosts_of(pattern, groups):
    if isinstance(pattern, (list, tuple)):
        hosts = []
        for p in pattern:
            hosts.extend(h for h in _hosts_of(p, groups) if h not in hosts)
        return hosts
    if pattern in groups:
        return list(groups[pattern])
    return [pattern]


def rotation_plan(credentials, queue, groups, only=None):
    plan = {}
    for name in queue:
        record = credentials[name]
        for index, consumer in enumerate(record.get("consumers") or []):
            if only is not None and consumer.get("name") not in (only.get(name) or []):
                continue
            kind = consumer.get("kind")
            cls = consumer_class(kind)  # where the kind is deployed: its TARGET field names the hosts
            target = consumer.get(cls.TARGET if cls is not None else "hosts")
            for host in _hosts_of(target, groups):
                plan.setdefault(host, []).append({
                    "credential": name, "consumer": consumer.get("name"), "index": index,
                    "kind": kind})
    return plan


def rotation_outcome(hostvars, hosts, fact="deploy_results", plan=None):
    """Collect every host's deploy results: {credential: {"failed": [...], "ok": [...], "changed": [...]}}.

    With ``plan`` (host -> work items), a planned item a host never reported (unreachable, or
    its play stopped) counts as failed: silence is not success."""
    outcome = {}
    for host in sorted(set(hosts) | set(plan or {}), key=lambda h: (h not in hosts, h)):
        results = dict((hostvars.get(host) or {}).get(fact) or {})
        for item in (plan or {}).get(host, []):
            reported = [r.get("consumer") for r in results.get(item["credential"], [])]
            if item["consumer"] not in reported:
                results.setdefault(item["credential"], []).append({
                    "consumer": item["consumer"], "kind": item.get("kind"), "failed": True, "changed": True,
                    "error": "no result from %s (unreachable, or its play stopped)" % host})
        for credential, items in results.items():
            entry = outcome.setdefault(credential, {"failed": [], "ok": [], "changed": []})
            for item in items:
                label = "%s@%s" % (item.get("consumer"), host)
                if item.get("failed"):
                    entry["failed"].append(dict(item, host=host, label=label))
                else:
                    entry["ok"].append(label)
                if item.get("changed"):
                    entry["changed"].append({"host": host, "consumer": item.get("consumer")})
    return outcome


def failed_credentials(hosts, hostvars, fact="deploy_results"):
    """Names of the credentials that failed on any of ``hosts`` so far (rolling stops there)."""
    outcome = rotation_outcome(hostvars, hosts, fact)
    return sorted(name for name, entry in outcome.items() if entry["failed"])


def _serial(value):
    """A certificate serial in one spelling: hex, lower case, no separators or leading zeros."""
    text = str(value or "").strip().lower().replace(":", "").replace("-", "")
    return (text.lstrip("0") or "0") if text else ""


def certificate_validity(state):
    """(not_before, not_after) of the certificate the store holds now, or (None, None).

    Read from ``state`` (``not_before``/``not_after``), else from its ``metadata`` (the
    store's custom_metadata, where the issue step records ``not_before``, ``not_after`` and
    ``certificate_serial``). Dates recorded for another serial than the store's current
    ``key_id`` (a rotation that was rolled back leaves the new certificate's) do not count,
    and neither do dates that cannot be read: the certificate's age is then unknown.
    """
    meta = state.get("metadata") or {}
    not_after = state.get("not_after") or meta.get("not_after")
    not_before = state.get("not_before") or meta.get("not_before")
    if not not_after:
        return None, None
    serial, key_id = meta.get("certificate_serial"), state.get("key_id")
    if serial and key_id and _serial(serial) != _serial(key_id):
        return None, None
    try:
        _time.parse_time(not_after)
        _time.parse_time(not_before)
    except ValueError:
        return None, None
    return not_before or None, not_after


def certificate_record(pem, serial=None):
    """What the store records beside a certificate's private key, from the PEM certificate:
    ``data`` (certificate, not_before, not_after) and ``metadata`` (not_before, not_after,
    certificate_serial), as the issue step writes them; empty when ``pem`` is no certificate."""
    not_before, not_after = pem_validity(pem)
    if not_after is None:
        return {"data": {}, "metadata": {}}
    dates = {"not_before": _time.format_time(not_before), "not_after": _time.format_time(not_after)}
    metadata = dict(dates, certificate_serial=serial) if serial else dict(dates)
    return {"data": dict(dates, certificate=pem), "metadata": metadata}


def pki_cert_url(issuer, what):
    """The PKI's public read of one certificate (a serial, in Vault's ``aa:bb`` or ``aa-bb``
    spelling) or of ``ca_chain``, for a vault_pki issuer block: ``issuer.url`` (default
    VAULT_ADDR on the controller) and ``issuer.mount`` (default pki). No token is needed."""
    return vault_pki.pki_cert_url(issuer, what)


def due_names(names, credentials, states, now=None):
    """The names among ``names`` that are due now: overdue by the policy, or of unknown age.

    ``states`` maps a name to what the store said (``last_rotated``; for certificates also
    ``metadata`` with ``not_before``/``not_after``, see ``certificate_validity``); the
    inventory's ``last_rotated`` is the fallback, as in the due report. A certificate is due
    by its validity (1/3 of its lifetime left, or 30 days before not_after), and of unknown
    age (so due) when the store records no validity for its current serial.
    """
    now = now or _time.now_iso()
    due = []
    for name in names:
        record = credentials.get(name) or {}
        state = states.get(name) or {}
        last = state.get("last_rotated") or record.get("last_rotated")
        not_before = not_after = None
        if record.get("type") == "certificate":
            not_before, not_after = certificate_validity(state)
        if _policy.status(record, last, now, not_before, not_after)["status"] in ("overdue", "unknown"):
            due.append(name)
    return due


def queue_label(name, states):
    phase = (states.get(name) or {}).get("phase")
    return "%s (resuming from %s)" % (name, phase) if phase in IN_FLIGHT else name


def emergency_delay(credential_type):
    """The policy's maximum delay once compromise is confirmed, in words."""
    hours = int(_policy.emergency_max_delay(credential_type).total_seconds() // 3600)
    return "immediate" if hours == 0 else "%d hours" % hours


class FilterModule(object):
    def filters(self):
        return {"rotation_plan": rotation_plan, "rotation_outcome": rotation_outcome,
                "due_names": due_names, "failed_credentials": failed_credentials,
                "emergency_delay": emergency_delay, "queue_label": queue_label,
                "certificate_record": certificate_record, "pki_cert_url": pki_cert_url}
