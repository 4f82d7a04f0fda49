"""Unit tests of the run planning filters, the scope assessment and the audit trail."""
import json

import pytest

from ansible_collections.credops.rotation.plugins.filter import plan
from ansible_collections.credops.rotation.plugins.module_utils import _audit, _scope

GROUPS = {"all": ["web1", "web2", "batch1", "k8s"], "web": ["web1", "web2"], "batch": ["batch1"]}
CREDS = {
    "a": {"type": "api_key", "consumers": [
        {"name": "web-app", "kind": "systemd", "hosts": "web"},
        {"name": "mobile", "kind": "kubernetes", "cluster": "k8s"},
        {"name": "jobs", "kind": "batch", "hosts": ["batch", "web2"]}]},
    "b": {"type": "database", "consumers": [{"name": "db-app", "kind": "systemd", "hosts": "web1"}]},
}


def test_plan_expands_groups_and_clusters_in_consumer_order():
    got = plan.rotation_plan(CREDS, ["a", "b"], GROUPS)
    assert list(got) == ["web1", "web2", "k8s", "batch1"]
    assert [(i["credential"], i["consumer"]) for i in got["web1"]] == [("a", "web-app"), ("b", "db-app")]
    assert [(i["consumer"], i["kind"], i["index"]) for i in got["web2"]] == [("web-app", "systemd", 0), ("jobs", "batch", 2)]
    assert got["k8s"] == [{"credential": "a", "consumer": "mobile", "index": 1, "kind": "kubernetes"}]


@pytest.mark.parametrize("queue,hosts", [([], []), (["b"], ["web1"]), (["a"], ["web1", "web2", "k8s", "batch1"])])
def test_plan_only_covers_the_queue(queue, hosts):
    assert list(plan.rotation_plan(CREDS, queue, GROUPS)) == hosts


def test_plan_only_named_consumers():
    got = plan.rotation_plan(CREDS, ["a"], GROUPS, only={"a": ["mobile"]})
    assert list(got) == ["k8s"]


HOSTVARS = {
    "web1": {"deploy_results": {"a": [{"consumer": "web-app", "changed": True, "failed": False}]}},
    "web2": {"deploy_results": {"a": [{"consumer": "web-app", "changed": True, "failed": True, "error": "boom"}],
                                "b": [{"consumer": "db-app", "changed": False, "failed": False}]}},
    "k8s": {},
}


def test_outcome_collects_failures_and_changes():
    out = plan.rotation_outcome(HOSTVARS, ["web1", "web2", "k8s"])
    assert out["a"]["ok"] == ["web-app@web1"]
    assert [f["label"] for f in out["a"]["failed"]] == ["web-app@web2"]
    assert out["a"]["changed"] == [{"host": "web1", "consumer": "web-app"}, {"host": "web2", "consumer": "web-app"}]
    assert out["b"] == {"failed": [], "ok": ["db-app@web2"], "changed": []}
    assert plan.failed_credentials(["web1", "web2", "k8s"], HOSTVARS) == ["a"]
    assert plan.failed_credentials(["web1"], HOSTVARS) == []


@pytest.mark.parametrize("last,due", [
    ("2026-01-01T00:00:00Z", True),      # long ago: overdue
    ("2026-11-30T00:00:00Z", False),     # yesterday: ok
    (None, True),                        # unknown age: rotate
])
def test_due_names(last, due):
    creds = {"x": {"type": "api_key", "risk": "high"}}
    got = plan.due_names(["x"], creds, {"x": {"last_rotated": last}}, now="2026-12-01T00:00:00Z")
    assert got == (["x"] if due else [])


def test_due_names_falls_back_to_inventory_last_rotated():
    creds = {"x": {"type": "api_key", "last_rotated": "2026-11-20T00:00:00Z"}}
    assert plan.due_names(["x"], creds, {}, now="2026-12-01T00:00:00Z") == []


@pytest.mark.parametrize("ctype,words", [("api_key", "immediate"), ("database", "4 hours"),
                                         ("webhook_secret", "24 hours"), ("nonsense", "immediate")])
def test_emergency_delay(ctype, words):
    assert plan.emergency_delay(ctype) == words


def test_queue_label():
    assert plan.queue_label("a", {"a": {"phase": "deployed"}}) == "a (resuming from deployed)"
    assert plan.queue_label("a", {"a": {"phase": "finished"}}) == "a"


AUDIT_LINES = [
    {"type": "request", "time": "2026-12-01T10:00:00Z", "auth": {"display_name": "token-app"},
     "request": {"path": "secret/data/api/x", "operation": "read", "remote_address": "10.0.0.5"}},
    {"type": "response", "time": "2026-12-01T10:00:00Z",
     "request": {"path": "secret/data/api/x", "operation": "read", "remote_address": "10.0.0.5"}},
    {"type": "request", "time": "2026-11-01T10:00:00Z",
     "request": {"path": "secret/data/api/x", "operation": "read", "remote_address": "10.0.0.6"}},
    {"type": "request", "time": "2026-12-01T11:00:00Z",
     "request": {"path": "secret/data/api/other", "operation": "read", "remote_address": "10.0.0.7"}},
    {"type": "request", "time": "2026-12-01T12:00:00Z",
     "request": {"path": "secret/data/api/x", "operation": "update", "remote_address": "10.0.0.8"}},
]


def test_store_reads_filters_path_operation_time_and_counts_requests_once():
    lines = [json.dumps(e) for e in AUDIT_LINES] + ["not json", ""]
    reads = _scope.store_reads(lines, "secret", "api/x", "2026-11-30T00:00:00Z")
    assert [(r["time"], r["source"], r["actor"]) for r in reads] == [("2026-12-01T10:00:00Z", "10.0.0.5", "token-app")]


def test_summarize_names_earliest_unknown_use():
    uses = [{"time": "2026-12-01T10:05:00Z", "source": "10.0.0.11"},
            {"time": "2026-12-01T10:01:00Z", "source": "203.0.113.9"},
            {"time": "2026-12-01T09:00:00Z", "source": "10.0.0.12"}]
    got = _scope.summarize(uses, [], ["10.0.0.11", "10.0.0.12"])
    assert got["uses"] == 3 and got["first_use"] == "2026-12-01T09:00:00Z"
    assert got["unknown_sources"] == ["203.0.113.9"]
    assert got["earliest_unauthorized_use"] == "2026-12-01T10:01:00Z"
    assert _scope.summarize([], [], [])["earliest_unauthorized_use"] is None


def test_audit_entry_shape_and_refusals(tmp_path):
    entry = _audit.make_entry("c", "revoked", key_id="k1", incident="INC-1", details={"step": "revoke"},
                              actor_name="alice", time="T")
    assert entry == {"time": "T", "credential": "c", "event": "revoked", "actor": "alice", "key_id": "k1",
                     "incident": "INC-1", "details": {"step": "revoke"}}
    with pytest.raises(ValueError, match="unknown audit event"):
        _audit.make_entry("c", "exploded")
    with pytest.raises(ValueError, match="secret fields"):
        _audit.make_entry("c", "issued", details={"api_key": "x"})
    path = _audit.append(str(tmp_path / "sub" / "audit.jsonl"), entry)
    _audit.append(path, entry)
    lines = (tmp_path / "sub" / "audit.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [entry, entry]
    assert oct((tmp_path / "sub" / "audit.jsonl").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("env,who", [({"AWX_USER_NAME": "awx-bob", "USER": "root"}, "awx-bob"),
                                     ({"USER": "carol"}, "carol")])
def test_actor_prefers_awx_user(env, who):
    assert _audit.actor(env) == who


# --- due_names for certificates: the validity the store records (custom_metadata) --------------
CERT = {"type": "certificate", "risk": "standard"}
NOW = "2026-12-01T00:00:00Z"


def _cert_state(not_before, not_after, serial="1c:5b:4b", key_id="1c:5b:4b"):
    meta = {"not_before": not_before, "not_after": not_after}
    if serial is not None:
        meta["certificate_serial"] = serial
    return {"key_id": key_id, "last_rotated": not_before, "metadata": meta}


@pytest.mark.parametrize("not_before,not_after,due", [
    # 365 days: due once 1/3 of the lifetime (121.7 days) is left, long before 30 days
    ("2026-06-01T00:00:00Z", "2027-06-01T00:00:00Z", False),   # 182 days left
    ("2026-04-03T00:00:00Z", "2027-04-03T00:00:00Z", False),   # 123 days left
    ("2026-04-01T00:00:00Z", "2027-04-01T00:00:00Z", True),    # 121 days left
    ("2026-03-01T00:00:00Z", "2027-03-01T00:00:00Z", True),    # 90 days left
    # 730 days: 1/3 left is 243 days before not_after
    ("2025-06-01T00:00:00Z", "2027-06-01T00:00:00Z", True),    # 182 days left
    # 60 days: 30 days before not_after comes before 1/3 left (20 days)
    ("2026-11-02T00:00:00Z", "2027-01-01T00:00:00Z", False),   # 31 days left
    ("2026-10-31T00:00:00Z", "2026-12-30T00:00:00Z", True),    # 29 days left
    # 30 days or less: due from the start (30 days before not_after is not_before)
    ("2026-11-30T00:00:00Z", "2026-12-30T00:00:00Z", True),
    ("2026-11-30T00:00:00Z", "2026-12-03T00:00:00Z", True),    # 72h, as in the lab
    ("2025-01-01T00:00:00Z", "2026-11-30T00:00:00Z", True),    # expired
])
def test_due_names_certificate_by_validity(not_before, not_after, due):
    got = plan.due_names(["c"], {"c": CERT}, {"c": _cert_state(not_before, not_after)}, now=NOW)
    assert got == (["c"] if due else [])


@pytest.mark.parametrize("serial,key_id,due", [
    ("1c:5b:4b", "1c:5b:4b", False),
    ("1C-5B-4B", "001c:5b:4b", False),   # one serial, spelled differently
    ("0a:0b:0c", "1c:5b:4b", True),      # recorded for another certificate (rolled back): age unknown
    (None, "1c:5b:4b", False),           # no serial recorded: the dates count
    ("1c:5b:4b", None, False),           # no key id in the store: the dates count
])
def test_due_names_certificate_dates_belong_to_the_current_serial(serial, key_id, due):
    state = _cert_state("2026-06-01T00:00:00Z", "2027-06-01T00:00:00Z", serial=serial, key_id=key_id)
    assert plan.due_names(["c"], {"c": CERT}, {"c": state}, now=NOW) == (["c"] if due else [])


@pytest.mark.parametrize("state,due", [
    ({}, True),                                                           # nothing known: rotate
    ({"last_rotated": "2026-11-30T00:00:00Z"}, True),                     # an age, but no validity
    ({"metadata": {"not_after": "soon"}, "last_rotated": "2026-11-30T00:00:00Z"}, True),   # unreadable
    ({"not_before": "2026-06-01T00:00:00Z", "not_after": "2027-06-01T00:00:00Z"}, False),  # given directly
    ({"metadata": {"not_after": "2027-06-01T00:00:00Z"}}, False),         # only not_after: 30 days before it
    ({"metadata": {"not_after": "2026-12-20T00:00:00Z"}}, True),
])
def test_due_names_certificate_partial_knowledge(state, due):
    assert plan.due_names(["c"], {"c": CERT}, {"c": state}, now=NOW) == (["c"] if due else [])


@pytest.mark.parametrize("not_before,due", [("2026-11-28T00:00:00Z", False), ("2026-11-20T00:00:00Z", True)])
def test_due_names_certificate_max_age_days_override(not_before, due):
    """Short-lived certificates: max_age_days (counted from not_before) replaces the lifetime rule."""
    creds = {"c": dict(CERT, max_age_days=7)}
    state = _cert_state(not_before, "2026-12-28T00:00:00Z")
    assert plan.due_names(["c"], creds, {"c": state}, now=NOW) == (["c"] if due else [])


def test_due_names_certificate_dates_only_count_for_certificates():
    creds = {"k": {"type": "api_key", "risk": "high"}}
    state = {"last_rotated": "2026-11-30T00:00:00Z", "metadata": {"not_after": "2026-01-01T00:00:00Z"}}
    assert plan.due_names(["k"], creds, {"k": state}, now=NOW) == []


def test_certificate_record_reads_the_validity_and_keeps_the_serial():
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from ansible_collections.credops.rotation.plugins.filter.plan import certificate_record

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "old.lab.test")])
    start = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0x1234).not_valid_before(start).not_valid_after(start + dt.timedelta(days=3))
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    record = certificate_record(pem, "12-34")
    assert record["data"] == {"certificate": pem, "not_before": "2026-11-01T12:00:00Z",
                              "not_after": "2026-11-04T12:00:00Z"}
    assert record["metadata"] == {"not_before": "2026-11-01T12:00:00Z", "not_after": "2026-11-04T12:00:00Z",
                                  "certificate_serial": "12-34"}
    assert certificate_record("not a certificate", "12-34") == {"data": {}, "metadata": {}}
    assert certificate_record("", None) == {"data": {}, "metadata": {}}


def test_pki_cert_url_from_the_issuer_block_or_vault_addr(monkeypatch):
    from ansible_collections.credops.rotation.plugins.filter.plan import pki_cert_url
    issuer = {"kind": "vault_pki", "url": "https://vault.example.org:8200/", "mount": "/pki_int/"}
    assert pki_cert_url(issuer, "1c:5b:0a") == "https://vault.example.org:8200/v1/pki_int/cert/1c-5b-0a"
    assert pki_cert_url(issuer, "ca_chain") == "https://vault.example.org:8200/v1/pki_int/cert/ca_chain"
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:8200")
    assert pki_cert_url({"kind": "vault_pki"}, "aa-bb") == "http://127.0.0.1:8200/v1/pki/cert/aa-bb"


# --- scope: times are compared as moments, not as text ----------------------------------------
def _audit_line(when, path="secret/data/api-credentials/x"):
    request = {"path": path, "operation": "read", "remote_address": "10.0.0.9"}
    return json.dumps({"type": "request", "time": when, "request": request})


@pytest.mark.parametrize("when, since, kept", [
    ("2026-12-01T10:30:00.123Z", "2026-12-01T10:30:00Z", True),         # fraction after a whole second
    ("2026-12-01T10:30:00.123456789Z", "2026-12-01T10:30:00.5Z", False),
    ("2026-12-01T11:15:00+01:00", "2026-12-01T10:30:00Z", False),       # 10:15 UTC, before
    ("2026-12-01T11:45:00+01:00", "2026-12-01T10:30:00Z", True),        # 10:45 UTC
    ("2026-12-01T10:45:00Z", "2026-12-01T11:00:00+01:00", True),        # since 10:00 UTC
    ("2026-12-01T05:31:00-05:00", "2026-12-01T10:30:00Z", True),        # 10:31 UTC
    ("not a time", "2026-12-01T10:30:00Z", True),                        # unreadable: kept, never dropped
])
def test_store_reads_since_compares_moments(when, since, kept):
    reads = _scope.store_reads([_audit_line(when)], "secret", "api-credentials/x", since)
    assert (len(reads) == 1) is kept


def test_summarize_orders_uses_by_moment():
    uses = [{"time": "2026-12-01T10:30:00Z", "source": "10.0.0.1"},
            {"time": "2026-12-01T10:30:00.123Z", "source": "10.0.0.2"},
            {"time": "2026-12-01T11:29:00+01:00", "source": "10.0.0.3"}]  # 10:29 UTC: the first
    scope = _scope.summarize(uses, [], known_sources=["10.0.0.1"])
    assert scope["first_use"] == "2026-12-01T11:29:00+01:00"
    assert scope["earliest_unauthorized_use"] == "2026-12-01T11:29:00+01:00"
    scope = _scope.summarize(uses, [], known_sources=["10.0.0.1", "10.0.0.3"])
    assert scope["earliest_unauthorized_use"] == "2026-12-01T10:30:00.123Z"
