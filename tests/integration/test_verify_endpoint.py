"""verify_endpoint (and webhook_secret) through ansible-playbook, against real local servers.

The demo key provider and the demo consumer app of the lab, an HTTPS server with a
certificate from a CA made here, and a server that turns healthy after a second. Results
are checked with independent means (the provider's own API, cryptography on the issued
certificate), and every byte of output is searched for the secrets sent.
"""
import hashlib
import ipaddress
import json
import os
import ssl
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.lab import _proc
from tests.lab.ansible_runner import ROOT, run_playbook

pytestmark = pytest.mark.lab

MODULE = "credops.rotation.verify_endpoint"
CREDENTIAL = "payment-gateway-api"


def no_secret_in(secret, proc, result=None):
    assert secret not in proc.stdout
    assert secret not in proc.stderr
    if result is not None:
        assert secret not in json.dumps(result)


# --- local servers --------------------------------------------------------------------

class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        status, body = self.server.answer(self.path)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def serve(answer, ssl_context=None):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), JsonHandler)
    srv.daemon_threads = True
    srv.answer = answer
    if ssl_context is not None:
        srv.socket = ssl_context.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    return srv


def stop(srv):
    srv.shutdown()
    srv.server_close()


def start_consumer_app(provider, key, workdir, procs):
    """Start the lab's consumer app (a subprocess) with a key; returns its base URL."""
    port = _proc.free_port()
    env = dict(os.environ, PAYMENT_API_KEY=key, PROVIDER_URL=provider.url, LISTEN_PORT=str(port))
    procs.append(_proc.start([sys.executable, str(ROOT / "tests/lab/consumer_app.py")],
                             workdir / ("consumer-%d.log" % port), env=env))
    url = "http://127.0.0.1:%d" % port
    _proc.wait_until(lambda: _proc.http_ok(url + "/health"), 15, what="consumer app")
    return url


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class Pki:
    """A test CA and a server certificate for 127.0.0.1 signed by it."""

    def __init__(self, workdir, days=90):
        now = datetime.now(timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        self.ca = (x509.CertificateBuilder().subject_name(_name("credops test CA"))
                   .issuer_name(_name("credops test CA")).public_key(ca_key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=365))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                  critical=True)
                   .add_extension(ca_ski, critical=False)
                   .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1"))
                     .issuer_name(self.ca.subject).public_key(key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=days))
                     .add_extension(x509.SubjectAlternativeName([
                         x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                         critical=False)
                     .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                     .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                     .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                                    critical=False)
                     .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        self.ca_path = workdir / "ca.pem"
        self.ca_path.write_bytes(self.ca.public_bytes(pem))
        self.cert_path = workdir / "server.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(pem))
        self.key_path = workdir / "server-key.pem"
        self.key_path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))


@pytest.fixture(scope="module")
def https_server():
    workdir = Path(tempfile.mkdtemp(prefix="credops-tls-"))
    pki = Pki(workdir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki.cert_path), str(pki.key_path))
    srv = serve(lambda path: (200, {"status": "healthy", "payment_gateway": "connected"}), ctx)
    srv.pki = pki
    srv.url = "https://127.0.0.1:%d/health/external-services" % srv.server_address[1]
    yield srv
    stop(srv)


@pytest.fixture(scope="module")
def slow_starter():
    """/health answers 503 until about 1 s after its first request, then 200; /never never does."""
    first = []

    def answer(path):
        if path == "/health":
            first.append(time.monotonic())
            if time.monotonic() - first[0] >= 1.0:
                return 200, {"ready": True}
        return 503, {"ready": False}

    srv = serve(answer)
    srv.url = "http://127.0.0.1:%d" % srv.server_address[1]
    yield srv
    stop(srv)


# --- one playbook run for every case --------------------------------------------------
# ansible-playbook costs seconds to start; each case is one task of a single run at -vvv,
# registered and saved, and the tests below each look at their case.

class Batch:
    def __init__(self):
        self.tasks, self.names = [], []
        self.results, self.proc = {}, None

    def verify(self, name, args, check=False):
        self.task(name, {MODULE: args, "check_mode": check})

    def task(self, name, task):
        self.tasks.append(dict(task, name=name, register="r_" + name, ignore_errors=True))
        self.names.append(name)

    def run(self, workdir, verbosity=3):
        out = workdir / "results.json"
        content = "{{ {" + ", ".join("'%s': r_%s" % (n, n) for n in self.names) + "} | to_json }}"
        save = {"name": "save", "ansible.builtin.copy": {"dest": str(out), "content": content},
                "no_log": True}
        play = [{"hosts": "localhost", "gather_facts": False, "connection": "local",
                 "vars": {"ansible_python_interpreter": sys.executable},
                 "tasks": self.tasks + [save]}]
        pb = workdir / "play.yml"
        pb.write_text(json.dumps(play))
        self.proc = run_playbook(pb, inventory="localhost,", verbosity=verbosity, timeout=300)
        self.results = json.loads(out.read_text()) if out.exists() else {}
        return self

    def __getitem__(self, name):
        assert name in self.results, "no result for %s:\n%s" % (name, self.proc.stdout[-4000:])
        return self.results[name]


WRONG_KEY = "sk_live_this-key-was-never-issued-0001"
PAYLOAD = '{"type":"credops.rotation.test"}'
PREVIOUS_WEBHOOK_SECRET = "whsec_previous-value-XXXXXXXXXXXXXXXX"


@pytest.fixture(scope="module")
def batch(provider, https_server, slow_starter, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("verify-endpoint")
    procs = []
    b = Batch()
    b.keys = {name: provider.create_key("verify-" + name)
              for name in ("live", "revoked", "malformed", "consumer")}
    assert provider.call("DELETE", "/v1/api-keys/" + b.keys["revoked"][0])[0] == 204
    test_url = provider.url + "/v1/test"
    live_secret = b.keys["live"][1]
    consumer_url = start_consumer_app(provider, b.keys["consumer"][1], workdir, procs)
    b.consumer_url = consumer_url + "/health/payment-integration"

    # the demo provider
    live = {"url": test_url, "secret": live_secret, "credential": CREDENTIAL,
            "json": {"status": "ok", "api_key_id": b.keys["live"][0]}, "deadline": 5}
    b.verify("live_check", live, check=True)
    b.verify("live", live)
    b.verify("revoked", {"url": test_url, "secret": b.keys["revoked"][1], "credential": CREDENTIAL,
                         "expect_rejected": True, "deadline": 5})
    b.verify("wrong", {"url": test_url, "secret": WRONG_KEY, "credential": CREDENTIAL,
                       "consumer": "payments-provider", "deadline": 0})
    b.verify("still_accepted", {"url": test_url, "secret": live_secret, "credential": CREDENTIAL,
                                "expect_rejected": True, "deadline": 1.5, "interval": 0.5})
    b.verify("malformed", {"url": test_url, "secret": b.keys["malformed"][1], "credential": CREDENTIAL,
                           "json": {"checks[?name=='x'": True}})
    # the credential in headers instead of `secret`, on a failing check (its message is printed)
    b.verify("headers", {"url": test_url, "credential": CREDENTIAL, "expect_rejected": True,
                         "headers": {"Authorization": "Bearer " + live_secret, "X-Trace": "leak-test"},
                         "deadline": 0})

    # the demo consumer app, before and after its key is revoked (in the same run)
    connected = {"url": b.consumer_url, "credential": CREDENTIAL, "consumer": "web-app",
                 "status": 200, "json": {"payment_gateway": "connected"}, "deadline": 5}
    b.verify("consumer_connected", connected)
    b.task("revoke_consumer_key", {"ansible.builtin.uri": {
        "url": provider.url + "/v1/api-keys/" + b.keys["consumer"][0], "method": "DELETE",
        "headers": {"Authorization": "Bearer " + provider.admin_token}, "status_code": 204}})
    b.verify("consumer_revoked_503", dict(connected, status=[503], json={"payment_gateway": "rejected"}))
    b.verify("consumer_revoked_200", dict(connected, deadline=0))

    # HTTPS
    cert = https_server.pki.cert
    b.serial = "%x" % cert.serial_number
    b.serial = "0" * (len(b.serial) % 2) + b.serial
    b.fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    colon_serial = ":".join(b.serial[i:i + 2] for i in range(0, len(b.serial), 2)).upper()
    ca_path = str(https_server.pki.ca_path)
    b.verify("https_ok", {"url": https_server.url, "ca_path": ca_path, "consumer": "mobile-backend",
                          "json": {"payment_gateway": "connected"}, "expect_serial": colon_serial,
                          "expect_fingerprint": "sha256:" + b.fingerprint.upper(),
                          "min_valid_days": 60, "deadline": 0})
    b.verify("https_mismatch", {"url": https_server.url, "ca_path": ca_path, "consumer": "mobile-backend",
                                "credential": "mobile-tls", "expect_serial": "01:02:03",
                                "min_valid_days": 365, "deadline": 0})
    b.verify("https_unknown_ca", {"url": https_server.url, "consumer": "mobile-backend",
                                  "deadline": 0, "retries": 0})
    b.verify("https_no_validate", {"url": https_server.url, "validate_certs": False, "deadline": 0})

    # the deadline loop
    b.verify("slow_healthy", {"url": slow_starter.url + "/health", "json": {"ready": True},
                              "deadline": 10, "interval": 0.3, "retries": 0})
    b.verify("slow_never", {"url": slow_starter.url + "/never", "consumer": "batch-processor",
                            "deadline": 1, "interval": 0.3, "retries": 0})

    # webhook_secret: generate (no_log), sign, verify during dual_accept, an illegal phase move
    b.task("wh_new", {"credops.rotation.webhook_secret": {"action": "generate"}, "no_log": True})
    b.task("wh_refused", {"credops.rotation.webhook_secret": {"action": "generate"}})
    b.task("wh_signed", {"credops.rotation.webhook_secret": {
        "action": "sign", "secret": "{{ r_wh_new.secret }}", "payload": PAYLOAD}})
    b.task("wh_checked", {"credops.rotation.webhook_secret": {
        "action": "verify", "accepted_secrets": [PREVIOUS_WEBHOOK_SECRET, "{{ r_wh_new.secret }}"],
        "payload": PAYLOAD, "header": "{{ r_wh_signed.header }}"}})
    b.task("wh_old_dropped", {"credops.rotation.webhook_secret": {
        "action": "verify", "accepted_secrets": [PREVIOUS_WEBHOOK_SECRET],
        "payload": PAYLOAD, "header": "{{ r_wh_signed.header }}", "expect_valid": False}})
    b.task("wh_illegal", {"credops.rotation.webhook_secret": {
        "action": "phase", "current_phase": "single", "phase": "complete"}})

    try:
        b.run(workdir)
    finally:
        for proc in procs:
            _proc.stop(proc)
    b.provider_log = provider.requests()
    return b


def uses_of(batch, key_name):
    key_id = batch.keys[key_name][0]
    return [r["status"] for r in batch.provider_log if r["path"] == "/v1/test" and r["key_id"] == key_id]


# --- the demo provider: a key works, a revoked key is dead ---------------------------

@pytest.mark.parametrize("name", ["live_check", "live"])
def test_live_key_passes_in_check_mode_and_for_real(batch, name):
    result = batch[name]
    assert not result.get("failed"), result
    assert result["ok"] is True and result["changed"] is False
    assert result["status"] == 200 and result["attempts"] == 1 and result["expected_status"] == [200]
    assert [c["ok"] for c in result["checks"]] == [True, True]
    assert result["problems"] == [] and "certificate" not in result


def test_provider_saw_the_uses(batch):
    # independent evidence: the provider's own log of the live key (check, real, rejected
    # checks that retried, the headers variant) - all accepted, the check-mode one included
    statuses = uses_of(batch, "live")
    assert len(statuses) >= 5 and set(statuses) == {200}
    assert uses_of(batch, "revoked") == [401]


def test_revoked_key_is_rejected(batch):
    result = batch["revoked"]
    assert not result.get("failed"), result
    assert result["ok"] is True and result["status"] == 401 and result["expected_status"] == [401, 403]


def test_wrong_key_fails_with_a_clear_message(batch):
    result = batch["wrong"]
    assert result["failed"] and result["ok"] is False and result["status"] == 401
    msg = result["msg"]
    assert "credential '%s'" % CREDENTIAL in msg and "consumer 'payments-provider'" in msg
    assert "expected status 200, got 401" in msg and "Fix:" in msg
    assert result["attempts"] == 1


def test_live_key_fails_expect_rejected(batch):
    result = batch["still_accepted"]
    assert result["failed"] and result["status"] == 200 and result["attempts"] >= 2
    assert "still accepted" in result["msg"] and "revoked at the issuer" in result["msg"]


def test_credential_in_headers_is_sent(batch):
    result = batch["headers"]
    assert result["failed"] and result["status"] == 200 and "still accepted" in result["msg"]


def test_malformed_jmespath_fails_before_any_request(batch):
    result = batch["malformed"]
    assert result["failed"] and "not a valid JMESPath" in result["msg"]
    assert "credential '%s'" % CREDENTIAL in result["msg"]
    assert uses_of(batch, "malformed") == []


# --- the demo consumer app -----------------------------------------------------------

def test_consumer_app_before_and_after_revocation(batch, provider):
    result = batch["consumer_connected"]
    assert result["ok"] and not result.get("failed"), result
    assert result["checks"] == [
        {"expr": "payment_gateway", "expected": "connected", "actual": "connected", "ok": True}]

    assert batch["revoke_consumer_key"]["status"] == 204
    assert provider.keys()[batch.keys["consumer"][0]]["status"] == "revoked"

    result = batch["consumer_revoked_503"]
    assert result["ok"] and result["status"] == 503 and not result.get("failed"), result

    result = batch["consumer_revoked_200"]
    assert result["failed"] and result["status"] == 503
    msg = result["msg"]
    assert "consumer 'web-app'" in msg and "credential '%s'" % CREDENTIAL in msg
    assert "expected status 200, got 503" in msg
    assert 'payment_gateway: expected "connected", got "rejected"' in msg
    assert "deploy step" in msg
    assert result["checks"][0]["actual"] == "rejected"


# --- HTTPS: the presented certificate ------------------------------------------------

def test_https_certificate_is_described_and_checked(batch, https_server):
    result = batch["https_ok"]
    assert result["ok"] and not result.get("failed"), result
    cert = https_server.pki.cert
    got = result["certificate"]
    assert got["serial"] == batch.serial
    assert got["sha256_fingerprint"] == batch.fingerprint
    assert got["not_after"] == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert got["not_before"] == cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert got["subject"] == "CN=127.0.0.1" and got["issuer"] == "CN=credops test CA"
    assert 89 < got["days_left"] <= 90


def test_https_serial_mismatch_and_short_validity_fail(batch):
    result = batch["https_mismatch"]
    assert result["failed"] and result["status"] == 200
    msg = result["msg"]
    assert "expected certificate serial 010203, got %s" % batch.serial in msg
    assert "valid for at least 365" in msg
    assert "credential 'mobile-tls'" in msg and "new certificate was deployed" in msg


def test_https_unknown_ca_fails(batch):
    result = batch["https_unknown_ca"]
    assert result["failed"] and result["status"] is None and "certificate" not in result
    assert "CERTIFICATE_VERIFY_FAILED" in result["msg"] or "certificate verify failed" in result["msg"]
    assert "ca_path" in result["msg"]


def test_https_validate_certs_false_still_reads_the_certificate(batch):
    result = batch["https_no_validate"]
    assert result["ok"] and result["certificate"]["issuer"] == "CN=credops test CA"
    assert result["certificate"]["serial"] == batch.serial


# --- the deadline loop, for real -------------------------------------------------------

def test_retries_until_healthy(batch):
    result = batch["slow_healthy"]
    assert result["ok"] and not result.get("failed"), result
    assert result["attempts"] >= 2 and 0.8 <= result["elapsed"] < 8
    assert result["checks"] == [{"expr": "ready", "expected": True, "actual": True, "ok": True}]


def test_gives_up_at_the_deadline(batch):
    result = batch["slow_never"]
    assert result["failed"] and result["status"] == 503
    # tries at 0, 0.3, 0.6, 0.9 and at the deadline (fewer when the box is busy), then stops
    assert 2 <= result["attempts"] <= 5 and 1.0 <= result["elapsed"] < 5
    assert "attempts over" in result["msg"] and "expected status 200, got 503" in result["msg"]


# --- webhook_secret in the playbook ----------------------------------------------------

def test_webhook_secret_generate_sign_verify_phase(batch):
    secret = batch["wh_new"]["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert batch["wh_new"]["secret_id"] == "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:16]
    assert batch["wh_refused"]["failed"] and "no_log" in batch["wh_refused"]["msg"]
    signed = batch["wh_signed"]
    import hmac as _hmac
    expected = _hmac.new(secret.encode(), ("%d.%s" % (signed["timestamp"], PAYLOAD)).encode(),
                         hashlib.sha256).hexdigest()
    assert signed["header"] == "t=%d,v1=%s" % (signed["timestamp"], expected)
    assert batch["wh_checked"]["valid"] is True and batch["wh_checked"]["matched"] == 1
    assert batch["wh_old_dropped"]["valid"] is False and not batch["wh_old_dropped"].get("failed")
    assert batch["wh_illegal"]["failed"]
    assert "illegal phase transition single -> complete" in batch["wh_illegal"]["msg"]


# --- nothing leaks, at -vvv ------------------------------------------------------------

def test_no_secret_in_output_at_verbosity_3(batch):
    proc = batch.proc
    assert "<localhost> EXEC" in proc.stdout          # -vvv did show the module runs
    assert "still accepted" in proc.stdout             # and the failure messages
    secrets = [secret for _key_id, secret in batch.keys.values()] + [WRONG_KEY, PREVIOUS_WEBHOOK_SECRET,
                                                                     batch["wh_new"]["secret"]]
    shown = dict((k, v) for k, v in batch.results.items() if k != "wh_new")
    for secret in secrets:
        no_secret_in(secret, proc, shown)
