"""Demo webhook receiver (stdlib only: it runs on the lab's systemd hosts with python3).

Reads its signing secrets from the environment once, at start (systemd EnvironmentFile), in
the env layout of webhook_rotate.yml:

    <VAR>        the secret in use (until a handshake completes, the old one)
    <VAR>_NEW    while both are accepted: the new secret
    <VAR>_OLD    while both are accepted: the old secret

where <VAR> is named by SECRET_ENV_VAR (default WEBHOOK_SECRET). A delivery is accepted when
its signature (header SIGNATURE_HEADER, value "t=<ts>,v1=<hex>" of HMAC-SHA256 over
"<ts>.<body>", keyed with the whole secret string in UTF-8; several v1= items while a sender
signs with two secrets; other items ignored) matches any of them, within SIGNATURE_TOLERANCE
seconds of the timestamp; every comparison is constant-time (hmac.compare_digest) and none
exits early. The check is this file's own code on the standard library, not the
collection's signer: a bug in the signer cannot be hidden by the same bug in the checker.

    POST /webhook      a delivery: 200 {"accepted": true, "matched": "new"} or 401
    GET  /deliveries   the delivery log: {"deliveries": [{time, matched, status, event_id,
                       type, source, reason}]}; matched is new, old, current or none (which
                       secret matched, checked in that order); never a secret or a signature
    GET  /health       {"status": "up", "accepts": ["current", "new", "old"]} (names only)

The log is a JSON-lines file (DELIVERY_LOG), so it survives restarts.
Environment: SECRET_ENV_VAR, LISTEN_PORT (default 8091), DELIVERY_LOG, SIGNATURE_HEADER
(default X-Webhook-Signature), SIGNATURE_TOLERANCE (seconds, default 300).
"""
import hashlib
import hmac
import json
import os
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VAR = os.environ.get("SECRET_ENV_VAR", "WEBHOOK_SECRET")
# checked in this order; the first that matches names the delivery
SECRETS = (("new", os.environ.get(VAR + "_NEW", "")),
           ("old", os.environ.get(VAR + "_OLD", "")),
           ("current", os.environ.get(VAR, "")))
PORT = int(os.environ.get("LISTEN_PORT", "8091"))
LOG = os.environ.get("DELIVERY_LOG", "/var/lib/webhook-receiver/deliveries.jsonl")
HEADER = os.environ.get("SIGNATURE_HEADER", "X-Webhook-Signature")
TOLERANCE = int(os.environ.get("SIGNATURE_TOLERANCE", "300"))
LOCK = threading.Lock()


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_header(header):
    """(timestamp or None, [signature, ...]) of "t=<ts>,v1=<hex>[,v1=<hex>...]", items in any
    order; items of other keys (v0=...) and items without "=" are ignored."""
    timestamp, signatures = None, []
    for item in (header or "").split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamp = value.strip()
        elif key == "v1":
            signatures.append(value.strip())
    try:
        timestamp = int(timestamp) if timestamp is not None else None
    except ValueError:
        timestamp = None
    return timestamp, signatures


def expected_signature(secret, timestamp, body):
    """Hex HMAC-SHA256 of "<ts>.<body>" keyed with the secret (UTF-8), as ASCII bytes."""
    message = ("%d.%s" % (timestamp, body)).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest().encode("ascii")


def check(body, header, now=time.time):
    """(label of the secret that matched or 'none', reason)."""
    timestamp, signatures = parse_header(header)
    if not signatures:
        return "none", "no signature found in the header (format 't={timestamp},v1={signature}')"
    if timestamp is None:
        return "none", "no timestamp: the header carries none and none was given"
    if TOLERANCE and abs(now() - timestamp) > TOLERANCE:
        return "none", "timestamp %d is outside the tolerance of %ds" % (timestamp, TOLERANCE)
    matched = "none"
    accepted = [(label, value) for label, value in SECRETS if value]
    for label, value in accepted:
        expected = expected_signature(value, timestamp, body)
        for signature in signatures:
            # every pair is compared (no early exit), each in constant time
            if hmac.compare_digest(expected, signature.lower().encode("utf-8")) and matched == "none":
                matched = label
    if matched == "none":
        return "none", "the signature matches none of the %d accepted secret(s)" % len(accepted)
    return matched, "ok"


def log(entry):
    with LOCK:
        os.makedirs(os.path.dirname(LOG) or ".", exist_ok=True)
        with open(LOG, "a") as fh:
            fh.write(json.dumps(entry) + "\n")


def read_log():
    with LOCK:
        try:
            with open(LOG) as fh:
                return [json.loads(line) for line in fh if line.strip()]
        except FileNotFoundError:
            return []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _send(self, code, body):
        payload = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        if self.path == "/deliveries":
            self._send(200, {"deliveries": read_log()})
        elif self.path == "/health":
            self._send(200, {"status": "up", "accepts": [label for label, value in SECRETS if value]})
        else:
            self._send(404, {"error": "not_found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path != "/webhook":
            self._send(404, {"error": "not_found"})
            return
        text = raw.decode("utf-8", "replace")
        matched, reason = check(text, self.headers.get(HEADER))
        status = 200 if matched != "none" else 401
        event = {}
        try:
            event = json.loads(text) if text else {}
        except ValueError:
            pass
        event = event if isinstance(event, dict) else {}
        log({"time": now_iso(), "matched": matched, "status": status, "reason": reason,
             "event_id": str(event.get("id", ""))[:64], "type": str(event.get("type", ""))[:64],
             "probe": str(event.get("probe", ""))[:16], "source": self.client_address[0]})
        if status == 200:
            self._send(200, {"accepted": True, "matched": matched})
        else:
            self._send(401, {"accepted": False, "error": "invalid_signature"})


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
