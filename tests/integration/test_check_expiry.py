"""check_expiry.yml end to end against real OpenBao and moto, plus the lookup's pieces.

Ages are planted with an independent client (hvac, boto3): KV v2 custom_metadata.last_rotated
old and new, a secret with no metadata (its version's created_time), AWS secrets with the
collection's last_rotated tag and without (AWSCURRENT CreatedDate: moto cannot backdate a
version, and its rotate_secret without a Lambda leaves an AWSCURRENT version it cannot read, so
LastRotatedDate is covered by the unit cases of age_from_store only), certificates in the store and served by a local
HTTPS server. Each run's JSON report is checked per credential, the exit code says whether
something is overdue, preflight stops a broken inventory before any store is read (the
OpenBao file audit log shows it), and no planted secret value appears anywhere.
"""
import datetime
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.credops.rotation.plugins.lookup import rotation_status
from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from tests.lab import _proc
from tests.lab.ansible_runner import run_playbook

PLAYBOOK = "playbooks/check_expiry.yml"
UTC = datetime.timezone.utc
NOW = datetime.datetime.now(UTC)
ADMIN_TOKEN = "planted-admin-token-4f1c9e"
CHROMIUM = "/usr/bin/chromium"


def iso(when):
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def days_ago(days):
    return NOW - datetime.timedelta(days=days)


# --- certificates and a local HTTPS server ---------------------------------------------------

def make_cert(not_before, not_after, cn="127.0.0.1"):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before)
            .not_valid_after(not_after).sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert_pem, key_pem


class _Health(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        body = b'{"status": "healthy"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def https_server(not_before, not_after):
    workdir = Path(tempfile.mkdtemp(prefix="credops-expiry-tls-"))
    cert_pem, key_pem = make_cert(not_before, not_after)
    (workdir / "cert.pem").write_text(cert_pem)
    (workdir / "key.pem").write_text(key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(workdir / "cert.pem"), str(workdir / "key.pem"))
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    srv.url = "https://127.0.0.1:%d/health" % srv.server_address[1]
    srv.workdir = workdir
    return srv


def stop_server(srv):
    srv.shutdown()
    srv.server_close()
    shutil.rmtree(srv.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def live_tls():
    """An HTTPS endpoint whose 90-day certificate is 50 days old: due at day 60, so warning."""
    srv = https_server(days_ago(50), days_ago(50) + datetime.timedelta(days=90))
    yield srv
    stop_server(srv)


# --- the live-endpoint read and the lookup's pieces (no lab needed) ---------------------------

def test_peer_certificate_dates_from_a_local_https_server(live_tls):
    dates = rotation_status.peer_certificate_dates(live_tls.url, timeout=5)
    assert dates["not_before"] == iso(days_ago(50))
    assert dates["not_after"] == iso(days_ago(50) + datetime.timedelta(days=90))
    assert dates["subject"] == "CN=127.0.0.1"


def test_peer_certificate_read_fails_clearly():
    port = _proc.free_port()
    with pytest.raises(OSError):
        rotation_status.peer_certificate_dates("https://127.0.0.1:%d/" % port, timeout=2)
    with pytest.raises(ValueError):
        rotation_status.peer_certificate_dates("http://127.0.0.1:%d/" % port)


class FakeStore:
    def __init__(self, result=None, error=None):
        self.result, self.error = result, error

    def read(self):
        if self.error:
            raise self.error
        return self.result


RECORD = {"type": "api_key", "rotation_contact": "x@example.org", "store": {"kind": "vault_kv2", "path": "p"},
          "consumers": [{"name": "app", "kind": "batch"}]}


@pytest.mark.parametrize("kind,read,last,source", [
    ("vault_kv2", {"metadata": {"last_rotated": "2024-01-02T00:00:00Z"}, "created_time": "2024-03-01T00:00:00Z",
                   "last_rotated": "2024-01-02T00:00:00Z"}, "2024-01-02T00:00:00Z", "vault_kv2:custom_metadata.last_rotated"),
    ("vault_kv2", {"metadata": {}, "created_time": "2024-03-01T00:00:00Z", "last_rotated": "2024-03-01T00:00:00Z"},
     "2024-03-01T00:00:00Z", "vault_kv2:created_time"),
    ("aws_secretsmanager", {"metadata": {"last_rotated": "2024-01-02T00:00:00Z"}, "created_time": "2024-03-01T00:00:00Z"},
     "2024-01-02T00:00:00Z", "aws_secretsmanager:tag last_rotated"),
    ("aws_secretsmanager", {"metadata": {}, "created_time": "2024-03-01T00:00:00Z", "last_rotated": "2024-02-01T00:00:00Z"},
     "2024-02-01T00:00:00Z", "aws_secretsmanager:LastRotatedDate"),
    ("aws_secretsmanager", {"metadata": {}, "created_time": "2024-03-01T00:00:00Z", "last_rotated": "2024-03-01T00:00:00Z"},
     "2024-03-01T00:00:00Z", "aws_secretsmanager:AWSCURRENT CreatedDate"),
    ("vault_kv2", {"metadata": {}, "created_time": None, "last_rotated": None}, None, None),
])
def test_age_from_store_names_its_source(kind, read, last, source):
    assert rotation_status.age_from_store(read, kind) == (last, source)


def test_collect_store_error_inventory_fallback_and_missing_secret():
    now = "2024-06-01T00:00:00Z"
    boom = RotationError("vault_kv2 secret/p: server unreachable", credential="c", step="store", fix="check VAULT_ADDR.")
    entry = rotation_status.collect("c", RECORD, lambda cfg, name: FakeStore(error=boom), now)
    assert entry["error"] == "vault_kv2 secret/p: server unreachable. Fix: check VAULT_ADDR."
    entry = rotation_status.collect("c", RECORD, lambda cfg, name: FakeStore(error=ConnectionError("refused")), now)
    assert entry["error"] == "store vault_kv2: ConnectionError: refused"
    absent = {"exists": False, "metadata": {}, "current": None, "created_time": None, "last_rotated": None}
    entry = rotation_status.collect("c", dict(RECORD, last_rotated="2024-05-01T00:00:00Z"),
                                    lambda cfg, name: FakeStore(absent), now)
    assert entry["source"] == "inventory:last_rotated" and "no secret at p" in entry["notes"][0]
    entry = rotation_status.collect("c", RECORD, lambda cfg, name: FakeStore(absent), now)
    assert entry["error"] == "store vault_kv2: no secret at p, and no last_rotated in the inventory"


def test_store_metadata_wins_over_the_inventory():
    read = {"exists": True, "metadata": {"last_rotated": "2024-05-30T00:00:00Z"}, "current": "s3cr3t-value",
            "created_time": "2024-05-30T00:00:00Z", "last_rotated": "2024-05-30T00:00:00Z"}
    rows = rotation_status.report({"c": dict(RECORD, last_rotated="2020-01-01T00:00:00Z")}, now="2024-06-01T00:00:00Z",
                                  get_store=lambda cfg, name: FakeStore(read), workers=1)
    assert rows[0]["status"] == "ok" and rows[0]["age_days"] == 2
    assert rows[0]["source"] == "vault_kv2:custom_metadata.last_rotated"
    assert "s3cr3t-value" not in json.dumps(rows)


def test_certificate_earliest_not_after_wins_between_store_and_endpoint(live_tls):
    cert_pem, key_pem = make_cert(days_ago(1), days_ago(1) + datetime.timedelta(days=90))
    read = {"exists": True, "metadata": {}, "current": key_pem, "created_time": iso(days_ago(1)),
            "_raw": {"data": {"private_key": key_pem, "certificate": cert_pem}}}
    record = {"type": "certificate", "rotation_contact": "x", "store": {"kind": "vault_kv2", "path": "tls"},
              "consumers": [{"name": "web", "kind": "systemd", "hosts": "web1", "verify": {"url": live_tls.url}}]}
    store_only = rotation_status.report({"tls": record}, get_store=lambda c, n: FakeStore(read), read_endpoints=False)
    assert store_only[0]["status"] == "ok" and store_only[0]["source"] == "vault_kv2:certificate"
    both = rotation_status.report({"tls": record}, get_store=lambda c, n: FakeStore(read))
    assert both[0]["status"] == "warning" and both[0]["source"] == "endpoint:" + live_tls.url
    assert both[0]["age_days"] == 50 and both[0]["max_age_days"] == 60
    assert "PRIVATE KEY" not in json.dumps(both)


def test_https_endpoints_are_templated_per_consumer_host():
    record = {"type": "certificate", "consumers": [
        {"name": "web", "kind": "systemd", "hosts": "web", "verify": {"url": "https://localhost:8443/health"}},
        {"name": "k8s", "kind": "kubernetes", "cluster": "c1", "verify": {"url": "https://api.example.org/health"}},
        {"name": "plain", "kind": "batch", "hosts": "web1", "verify": {"url": "http://web1/health"}}]}

    def per_host(url):
        return {"rotation_credentials": {"tls": {"consumers": [{"verify": {"url": url}}]}}}

    hostvars = {"web1": per_host("https://web1:8443/health"), "web2": per_host("https://web2:8443/health")}
    inv = rotation_status._model.Inventory({"all": ["web1", "web2", "c1"], "web": ["web1", "web2"]})
    assert rotation_status.https_endpoints("tls", record, inv, hostvars) == [
        "https://web1:8443/health", "https://web2:8443/health", "https://api.example.org/health"]
    # without hostvars (or hosts that lack the variable) the record's own URL is used
    assert rotation_status.https_endpoints("tls", record, inv, None, limit=1) == ["https://localhost:8443/health"]
    assert rotation_status.https_endpoints("tls", record, inv, {}) == [
        "https://localhost:8443/health", "https://api.example.org/health"]


# --- the lab: OpenBao and moto ----------------------------------------------------------------

@pytest.fixture(scope="module")
def planted(openbao, moto):
    """Secrets with known ages in OpenBao and moto; returns their secret values (to search output for)."""
    import hvac
    client = hvac.Client(url=openbao.addr, token=openbao.token)
    kv = client.secrets.kv.v2
    values = {}

    def put(path, data, custom=None):
        kv.create_or_update_secret(path=path, secret=data, mount_point="secret")
        if custom is not None:
            kv.update_metadata(path=path, custom_metadata=custom, mount_point="secret")
        values[path] = [v for v in data.values() if isinstance(v, str) and len(v) > 8]

    put("expiry/old-key", {"api_key": "sk_live_old_0a9f8e7d6c"}, {"last_rotated": iso(days_ago(200)), "rotation_phase": "finished"})
    put("expiry/fresh-key", {"api_key": "sk_live_fresh_1b2c3d4e5f"}, {"last_rotated": iso(days_ago(10))})
    put("expiry/warn-key", {"api_key": "sk_live_warn_9z8y7x6w5v"}, {"last_rotated": iso(days_ago(80))})
    put("expiry/created-only", {"value": "db-password-created-only-77"})
    old_cert, old_key = make_cert(days_ago(70), days_ago(70) + datetime.timedelta(days=90))
    put("expiry/tls-old", {"private_key": old_key, "certificate": old_cert})
    ok_cert, ok_key = make_cert(days_ago(1), days_ago(1) + datetime.timedelta(days=90))
    put("expiry/tls-ok", {"private_key": ok_key, "certificate": ok_cert})
    _live_cert, live_key = make_cert(days_ago(1), days_ago(1) + datetime.timedelta(days=90))
    put("expiry/tls-live", {"private_key": live_key})

    sm = moto.client("secretsmanager")
    sm.create_secret(Name="expiry-aws-fresh", SecretString="aws-fresh-secret-value-31")
    sm.create_secret(Name="expiry-aws-old", SecretString="aws-old-secret-value-59",
                     Tags=[{"Key": "credops:last_rotated", "Value": iso(days_ago(120))}])
    values["aws"] = ["aws-fresh-secret-value-31", "aws-old-secret-value-59"]
    return values


def kv(path, field="value"):
    return {"kind": "vault_kv2", "mount": "secret", "path": path, "field": field}


def record(ctype, store, risk=None, consumers=None, **extra):
    rec = {"type": ctype, "rotation_contact": "team@example.org", "store": store,
           "issuer": {"api_key": {"kind": "rest", "base_url": "https://api.provider.example.com",
                                  "auth": {"type": "bearer", "token": "{{ lookup('ansible.builtin.env', 'PROVIDER_ADMIN_TOKEN') }}"},
                                  "create": {"method": "POST", "path": "/v1/api-keys", "secret_path": "api_key",
                                             "id_path": "id"},
                                  "revoke": {"method": "DELETE", "path": "/v1/api-keys/{id}"}},
                      "database": {"kind": "generated", "length": 32},
                      "certificate": {"kind": "vault_pki", "mount": "pki", "role": "lab",
                                      "common_name": "svc.lab.test", "ttl": "2160h"}}[ctype],
           "consumers": consumers or [{"name": "web-app", "kind": "systemd", "hosts": "web",
                                       "env_file": "/etc/application/environment",
                                       "env_var": "KEY_" + store.get("path", store.get("secret_id", "")).replace("/", "_")
                                       .replace("-", "_").upper(), "service": "application.service"}]}
    if risk:
        rec["risk"] = risk
    rec.update(extra)
    return rec


def clean_credentials(live_url):
    return {
        "fresh-key": record("api_key", kv("expiry/fresh-key", "api_key"), risk="high"),
        "warn-key": record("api_key", kv("expiry/warn-key", "api_key")),
        # the inventory's (old) last_rotated loses against the store's created_time
        "created-only": record("database", kv("expiry/created-only"), last_rotated="2020-01-01T00:00:00Z"),
        "aws-fresh": record("api_key", {"kind": "aws_secretsmanager", "secret_id": "expiry-aws-fresh"}),
        "tls-ok": record("certificate", kv("expiry/tls-ok", "private_key")),
        "tls-live": record("certificate", kv("expiry/tls-live", "private_key"), consumers=[
            {"name": "mobile-backend", "kind": "kubernetes", "cluster": "prod-cluster", "namespace": "payments",
             "secret": "tls-live", "deployments": ["mobile-backend"], "verify": {"url": live_url}}]),
    }


def overdue_credentials(live_url):
    creds = clean_credentials(live_url)
    creds.update({
        "old-key": record("api_key", kv("expiry/old-key", "api_key")),
        "aws-old": record("api_key", {"kind": "aws_secretsmanager", "secret_id": "expiry-aws-old"}),
        "tls-old": record("certificate", kv("expiry/tls-old", "private_key")),
    })
    return creds


def write_inventory(workdir, credentials):
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
    hosts = {"all": {
        "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                  "prod-cluster": {"ansible_connection": "local"}},
        "children": {"web": {"hosts": {"web1": {}, "web2": {}}}, "batch": {"hosts": {"batch1": {}}}}}}
    (workdir / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (workdir / "group_vars" / "all" / "credentials.yml").write_text(
        yaml.safe_dump({"rotation_credentials": credentials}, sort_keys=False))
    return workdir / "hosts.yml"


def run_check(tmp_path, credentials, lab_env, fmt="json", name="report", verbosity=0, extra=None, tags=None):
    inventory = write_inventory(tmp_path / ("inv-" + name), credentials)
    report = tmp_path / ("%s.%s" % (name, {"text": "txt"}.get(fmt, fmt)))
    env = dict(lab_env, PROVIDER_ADMIN_TOKEN=ADMIN_TOKEN)
    extra_vars = {"report_format": fmt, "report_path": str(report)}
    extra_vars.update(extra or {})
    proc = run_playbook(PLAYBOOK, inventory=inventory, extra_vars=extra_vars, env=env, verbosity=verbosity, tags=tags)
    return proc, report


def assert_no_secret(planted, *texts):
    blob = "\n".join(texts)
    for values in planted.values():
        for value in values:
            assert value not in blob
    assert "PRIVATE KEY" not in blob
    assert ADMIN_TOKEN not in blob


EXPECTED_CLEAN = {
    "fresh-key": ("ok", 10, 30, "vault_kv2:custom_metadata.last_rotated"),
    "warn-key": ("warning", 80, 90, "vault_kv2:custom_metadata.last_rotated"),
    "created-only": ("ok", 0, 90, "vault_kv2:created_time"),
    "aws-fresh": ("ok", 0, 90, "aws_secretsmanager:AWSCURRENT CreatedDate"),
    "tls-ok": ("ok", 1, 60, "vault_kv2:certificate"),
    "tls-live": ("warning", 50, 60, "endpoint:"),
}


@pytest.mark.lab
def test_clean_inventory_passes_with_statuses_per_credential(tmp_path, planted, lab_env, live_tls, openbao):
    proc, report = run_check(tmp_path, clean_credentials(live_tls.url), lab_env, name="clean", verbosity=3)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    rows = json.loads(report.read_text())
    by_name = dict((r["credential"], r) for r in rows)
    assert sorted(by_name) == sorted(EXPECTED_CLEAN)
    for name, (status, age, max_age, source) in EXPECTED_CLEAN.items():
        row = by_name[name]
        assert (row["status"], row["age_days"], row["max_age_days"]) == (status, age, max_age), row
        assert row["source"].startswith(source), row
        for key in ("credential", "type", "risk", "consumers", "due_at", "last_rotated"):
            assert key in row
    assert by_name["fresh-key"]["risk"] == "high" and by_name["fresh-key"]["consumers"] == ["web-app"]
    assert by_name["tls-live"]["not_after"] == iso(days_ago(50) + datetime.timedelta(days=90))
    assert [r["status"] for r in rows][:2] == ["warning", "warning"]  # most urgent first
    assert "6 credential(s): 4 ok, 2 warning, 0 overdue, 0 unknown" in proc.stdout
    assert_no_secret(planted, proc.stdout, proc.stderr, report.read_text())


@pytest.mark.lab
def test_overdue_fails_the_run_and_names_them(tmp_path, planted, lab_env, live_tls):
    proc, report = run_check(tmp_path, overdue_credentials(live_tls.url), lab_env, name="overdue")
    assert proc.returncode != 0
    rows = json.loads(report.read_text())  # the report is written before the run fails
    by_name = dict((r["credential"], r) for r in rows)
    assert [r["credential"] for r in rows[:3]] == ["old-key", "aws-old", "tls-old"]  # longest overdue first
    assert (by_name["old-key"]["status"], by_name["old-key"]["age_days"]) == ("overdue", 200)
    assert (by_name["aws-old"]["status"], by_name["aws-old"]["age_days"]) == ("overdue", 120)
    assert by_name["aws-old"]["source"] == "aws_secretsmanager:tag last_rotated"
    assert (by_name["tls-old"]["status"], by_name["tls-old"]["age_days"]) == ("overdue", 70)
    assert by_name["fresh-key"]["status"] == "ok"
    assert "3 credential(s) overdue for rotation" in proc.stdout
    for name in ("old-key", "aws-old", "tls-old"):
        assert "- %s (" % name in proc.stdout
    assert "credops.rotation.rotate" in proc.stdout
    assert_no_secret(planted, proc.stdout, proc.stderr, report.read_text())


@pytest.mark.lab
def test_text_report_is_printed_by_default(tmp_path, planted, lab_env, live_tls):
    inventory = write_inventory(tmp_path / "inv-text", overdue_credentials(live_tls.url))
    proc = run_playbook(PLAYBOOK, inventory=inventory, env=lab_env)
    assert proc.returncode != 0
    assert "STATUS    CREDENTIAL" in proc.stdout
    # one report line per output line: as a YAML block (this checkout's ansible.cfg) or as the
    # quoted items of a list (ansible-core's default callback, as the nox matrix runs it)
    lines = [line.strip().rstrip(",").strip('"') for line in proc.stdout.splitlines()]
    assert any(line.startswith("OVERDUE   old-key") for line in lines), proc.stdout[-3000:]
    assert any(line.startswith("OK        fresh-key") for line in lines)
    assert_no_secret(planted, proc.stdout, proc.stderr)


@pytest.mark.lab
def test_unreachable_store_is_unknown_and_fails(tmp_path, planted, lab_env, live_tls):
    creds = clean_credentials(live_tls.url)
    dead = kv("expiry/fresh-key", "api_key")
    dead["url"] = "http://127.0.0.1:%d" % _proc.free_port()
    creds["dead-store"] = record("api_key", dead, consumers=[{"name": "nightly", "kind": "batch", "hosts": "batch"}])
    proc, report = run_check(tmp_path, creds, lab_env, name="dead", extra={"check_expiry_read_endpoints": False})
    assert proc.returncode != 0 and report.exists(), proc.stdout[-3000:]
    rows = json.loads(report.read_text())
    dead_row = [r for r in rows if r["credential"] == "dead-store"][0]
    assert dead_row["status"] == "unknown" and dead_row["age_days"] is None
    assert "127.0.0.1" in dead_row["error"]
    assert "credential(s) whose age could not be read" in proc.stdout and "dead-store" in proc.stdout
    assert [r["status"] for r in rows if r["credential"] == "fresh-key"] == ["ok"]


@pytest.mark.lab
def test_broken_inventory_fails_in_preflight_before_any_store_read(tmp_path, planted, lab_env, live_tls, openbao):
    creds = clean_credentials(live_tls.url)
    creds["fresh-key"]["store"]["path"] = "expiry/never-read-1"
    creds["warn-key"]["store"]["path"] = "expiry/never-read-2"
    creds["warn-key"]["consumers"][0]["env_var"] = "BAD-NAME"
    creds["fresh-key"]["type"] = "password"
    creds["created-only"]["consumers"][0]["hosts"] = "no-such-group"
    creds["tls-ok"]["issuer"]["kind"] = "generated"
    before = openbao.audit_log.stat().st_size if openbao.audit_log.exists() else 0
    proc, report = run_check(tmp_path, creds, lab_env, name="broken")
    assert proc.returncode != 0
    out = proc.stdout
    assert "rotation_credentials has 4 problem(s); nothing was read" in out
    assert "fresh-key.type: unknown type 'password'" in out
    assert "warn-key.consumers[0].env_var: 'BAD-NAME' is not a valid environment variable name" in out
    assert "created-only.consumers[0].hosts: 'no-such-group' is neither a host nor a group of the inventory" in out
    assert "tls-ok.issuer.kind: type certificate cannot be issued by generated" in out
    assert not report.exists()
    audit = openbao.audit_log.read_bytes()[before:].decode("utf-8", "replace") if openbao.audit_log.exists() else ""
    assert "secret/metadata/expiry" not in audit and "secret/data/expiry" not in audit
    assert "never-read" not in audit


@pytest.mark.lab
def test_preflight_tag_validates_only(tmp_path, planted, lab_env, live_tls, openbao):
    creds = clean_credentials(live_tls.url)
    creds["fresh-key"]["store"]["path"] = "expiry/tag-never-read"
    before = openbao.audit_log.stat().st_size
    proc, report = run_check(tmp_path, creds, lab_env, name="tagged", tags="preflight")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert not report.exists()
    assert "tag-never-read" not in openbao.audit_log.read_bytes()[before:].decode("utf-8", "replace")


@pytest.fixture(scope="module")
def html_report(tmp_path_factory, planted, openbao, moto, live_tls):
    tmp_path = tmp_path_factory.mktemp("html")
    env = dict(openbao.env(), **moto.env())
    proc, report = run_check(tmp_path, overdue_credentials(live_tls.url), env, fmt="html", name="report")
    return proc, report


@pytest.mark.lab
def test_html_report_is_self_contained(html_report, planted):
    proc, report = html_report
    assert proc.returncode != 0  # overdue credentials still fail the run
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for external in ("<link", "<script", "src=", "@import", "url("):
        assert external not in page
    assert page.count("<svg") == 10  # 9 age bars and the dependency graph
    assert page.index("old-key") < page.index("fresh-key")  # sorted by urgency
    assert "Dependency map" in page and "mobile-backend" in page and "web1" in page
    assert_no_secret(planted, page)


@pytest.mark.lab
def test_html_report_renders_in_chromium(html_report, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip("%s is not installed (apt-get install chromium) - the page was checked as text only" % CHROMIUM)
    _proc_result, report = html_report
    shot = tmp_path / "report.png"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1400,1800", "--screenshot=%s" % shot, report.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert shot.exists(), result.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30000


# --- discover_consumers.yml: a systemd host's files (a tree on localhost) and the k8s emulator ---
# (kept here with the other inventory-side playbook; the systemd part runs against real files on
# this machine through the same grep/find tasks a real host gets, the Kubernetes part against
# tests/lab/k8s_emulator.py through the official client.)

DISCOVER = "playbooks/discover_consumers.yml"


def _deployment(name, container):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "payments"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [dict(container, name="app", image="demo:1")]}}}}


@pytest.fixture(scope="module")
def k8s(tmp_path_factory):
    from tests.lab.k8s_emulator import K8sEmulator
    emu = K8sEmulator(tmp_path_factory.mktemp("k8s-discover"))
    emu.start()
    try:
        emu.seed([
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "payment-gateway-secret", "namespace": "payments"},
             "stringData": {"api_key": "k8s-secret-value-never-read-93"}},
            _deployment("mobile-backend", {"envFrom": [{"secretRef": {"name": "payment-gateway-secret"}}]}),
            _deployment("reports", {"env": [{"name": "PAYMENT_API_KEY", "valueFrom": {
                "secretKeyRef": {"name": "payment-gateway-secret", "key": "api_key"}}}]}),
            _deployment("unrelated", {"env": [{"name": "X", "value": "1"}]}),
        ])
        yield emu
    finally:
        emu.stop()


def _systemd_tree(root):
    """/etc of a systemd host: the listed consumer, an unlisted unit, a default file, a unit Environment=."""
    etc = root / "etc"
    for sub in ("systemd/system/other.service.d", "application", "other", "default"):
        (etc / sub).mkdir(parents=True, exist_ok=True)
    (etc / "systemd/system/application.service").write_text(
        "[Service]\nEnvironmentFile=%s/application/environment\nExecStart=/bin/true\n" % etc)
    (etc / "systemd/system/other.service").write_text(
        '[Service]\nEnvironment="FOO=bar" "DB_PASSWORD=unit-secret-value-never-printed-61"\nExecStart=/bin/true\n')
    (etc / "systemd/system/other.service.d/env.conf").write_text("[Service]\nEnvironmentFile=-%s/other/env\n" % etc)
    (etc / "application/environment").write_text("PAYMENT_API_KEY=env-secret-value-never-printed-17\nOTHER=1\n")
    (etc / "other/env").write_text('export PAYMENT_API_KEY="env-secret-value-never-printed-29"\n')
    (etc / "default/batch").write_text("# PAYMENT_API_KEY=commented-out\nPAYMENT_API_KEY = env-secret-value-never-printed-41\n")
    return etc


@pytest.mark.lab
def test_discover_consumers_reports_drift_both_ways(tmp_path, k8s):
    etc = _systemd_tree(tmp_path / "host")
    inv = tmp_path / "inv"
    (inv / "group_vars" / "all").mkdir(parents=True)
    dead_port = _proc.free_port()
    hosts = {"all": {
        "hosts": {
            "localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                          "discover_consumers_scan": True},
            "web9": {"ansible_host": "127.0.0.1", "ansible_port": dead_port, "ansible_connection": "ssh",
                     "ansible_ssh_common_args": "-o ConnectTimeout=3 -o BatchMode=yes"},
            "prod-cluster": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                             "kubeconfig": str(k8s.kubeconfig_path)}},
        "children": {"web": {"hosts": {"localhost": {}, "web9": {}}}},
        "vars": {"discover_consumers_unit_dirs": [str(etc / "systemd/system")],
                 "discover_consumers_env_dirs": [str(etc)], "discover_consumers_default_dirs": [str(etc / "default")]}}}
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
    base = {"rotation_contact": "x@example.org", "issuer": {"kind": "generated"}}
    credentials = {
        "payment-gateway-api": dict(base, type="api_key", store={"kind": "vault_kv2", "path": "a/pay"}, consumers=[
            {"name": "web-app", "kind": "systemd", "hosts": "web", "env_file": str(etc / "application/environment"),
             "env_var": "PAYMENT_API_KEY", "service": "application.service"},
            {"name": "mobile", "kind": "kubernetes", "cluster": "prod-cluster", "namespace": "payments",
             "secret": "payment-gateway-secret", "deployments": ["mobile-backend", "retired-app"]}]),
        "db": dict(base, type="database", store={"kind": "vault_kv2", "path": "a/db"}, consumers=[
            {"name": "billing", "kind": "systemd", "hosts": "localhost", "env_file": str(etc / "db/env"),
             "env_var": "DB_PASSWORD", "service": "billing.service"}]),
    }
    (inv / "group_vars" / "all" / "credentials.yml").write_text(yaml.safe_dump({"rotation_credentials": credentials}))
    report = tmp_path / "drift.json"
    proc = run_playbook(DISCOVER, inventory=inv / "hosts.yml", verbosity=3,
                        extra_vars={"discover_consumers_report_path": str(report)})
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert report.exists(), proc.stdout[-3000:]
    drift = json.loads(report.read_text())
    unlisted = sorted((d.get("host") or d.get("cluster"), d.get("env_var") or d.get("deployment"),
                       d.get("file") or d.get("secret")) for d in drift["unlisted"])
    assert unlisted == [
        ("localhost", "DB_PASSWORD", str(etc / "systemd/system/other.service")),
        ("localhost", "PAYMENT_API_KEY", str(etc / "default/batch")),
        ("localhost", "PAYMENT_API_KEY", str(etc / "other/env")),
        ("prod-cluster", "reports", "payment-gateway-secret"),
    ]
    other = [d for d in drift["unlisted"] if d.get("file") == str(etc / "other/env")][0]
    assert other["units"] == ["other.service"] and other["credentials"] == ["payment-gateway-api"]
    missing = sorted((d["credential"], d["consumer"], d.get("host") or d.get("cluster")) for d in drift["missing"])
    assert missing == [("db", "billing", "localhost"), ("payment-gateway-api", "mobile", "prod-cluster")]
    assert [d["deployment"] for d in drift["missing"] if d["kind"] == "kubernetes"] == ["retired-app"]
    assert drift["not_scanned"] == [{"kind": "systemd", "host": "web9"}]
    assert "Consumer discovery: 4 unlisted, 2 missing, 0 mismatched, 1 not scanned" in proc.stdout
    assert "The dependency map is out of date" in proc.stdout
    for planted_value in ("never-printed", "never-read", "commented-out"):
        assert planted_value not in proc.stdout and planted_value not in proc.stderr
        assert planted_value not in report.read_text()


# --- a record without an owner is a finding, not a refusal; the default callback -------------

def _no_owner_credentials(live_url):
    creds = clean_credentials(live_url)
    del creds["warn-key"]["rotation_contact"]
    creds["created-only"]["rotation_contact"] = ""
    creds["old-key"] = record("api_key", kv("expiry/old-key", "api_key"))
    del creds["old-key"]["rotation_contact"]
    return creds


@pytest.mark.lab
@pytest.mark.parametrize("fmt", ["json", "text", "html"])
def test_missing_rotation_contact_is_a_finding_not_a_refusal(tmp_path, planted, lab_env, live_tls, fmt):
    proc, report = run_check(tmp_path, _no_owner_credentials(live_tls.url), lab_env, fmt=fmt, name="owner-" + fmt,
                             extra={"check_expiry_read_endpoints": False})
    # every credential is reported; old-key is overdue, so the run still fails - after the report
    assert proc.returncode != 0 and report.exists(), proc.stdout[-3000:]
    assert "nothing was read" not in proc.stdout
    text = report.read_text()
    if fmt == "json":
        by_name = dict((r["credential"], r) for r in json.loads(text))
        assert sorted(by_name) == sorted(list(EXPECTED_CLEAN) + ["old-key"])
        for name in ("warn-key", "created-only", "old-key"):
            assert by_name[name]["rotation_contact"] is None
            assert len(by_name[name]["findings"]) == 1 and "no owner: rotation_contact is missing or empty" in \
                by_name[name]["findings"][0], by_name[name]
        assert by_name["fresh-key"]["findings"] == [] and by_name["fresh-key"]["rotation_contact"] == "team@example.org"
        assert (by_name["old-key"]["status"], by_name["warn-key"]["status"]) == ("overdue", "warning")
    elif fmt == "text":
        assert "7 credential(s), 1 overdue" in text and ", 3 finding(s)" in text
        findings = text.split("Findings (they block no report; fix them in the inventory):", 1)[1]
        for name in ("warn-key", "created-only", "old-key"):
            assert "  %s: no owner: rotation_contact is missing or empty" % name in findings
    else:
        assert "<h2>Findings" in text and "<b>old-key</b>: no owner: rotation_contact is missing or empty" in text
    assert "contact nobody" in proc.stdout  # the failure names no owner for old-key
    assert_no_secret(planted, proc.stdout, proc.stderr, text)


@pytest.mark.lab
def test_rotate_still_refuses_a_record_without_owner(tmp_path, planted, lab_env, live_tls):
    """The contract's record names its owner; a rotation (which changes things) still needs one."""
    creds = {"warn-key": clean_credentials(live_tls.url)["warn-key"]}
    del creds["warn-key"]["rotation_contact"]
    inventory = write_inventory(tmp_path / "inv-rotate-owner", creds)
    proc = run_playbook("playbooks/rotate.yml", inventory=inventory, env=dict(lab_env, PROVIDER_ADMIN_TOKEN=ADMIN_TOKEN),
                        check=True)
    assert proc.returncode != 0
    assert "warn-key.rotation_contact: missing or empty" in proc.stdout


@pytest.mark.lab
def test_text_report_is_readable_under_the_default_callback(tmp_path, planted, lab_env, live_tls):
    """No project ansible.cfg (users do not have ours, with callback_result_format=yaml): the printed
    text report must come out line by line, not as one line with literal \\n."""
    empty_cfg = tmp_path / "ansible.cfg"
    empty_cfg.write_text("[defaults]\n")
    inventory = write_inventory(tmp_path / "inv-default-cb", _no_owner_credentials(live_tls.url))
    proc = run_playbook(PLAYBOOK, inventory=inventory, extra_vars={"check_expiry_read_endpoints": False},
                        env=dict(lab_env, ANSIBLE_CONFIG=str(empty_cfg)))
    assert proc.returncode != 0  # old-key is overdue
    printed = proc.stdout.split("Record | print the text report", 1)[1].split("TASK [", 1)[0]
    assert "\\n" not in printed, printed[:3000]
    lines = [line.strip().strip('",').strip() for line in proc.stdout.splitlines()]
    assert any(line.startswith("Credential rotation report as of") for line in lines), proc.stdout[-3000:]
    assert any(line.startswith("STATUS    CREDENTIAL") for line in lines)
    assert any(line.startswith("OVERDUE   old-key") for line in lines)
    assert any(line.startswith("WARNING   warn-key") for line in lines)
    assert any(line.startswith("old-key: no owner: rotation_contact is missing or empty") for line in lines)
    assert_no_secret(planted, proc.stdout, proc.stderr)
