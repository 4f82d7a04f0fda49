"""Demo webhook receiver (stdlib only: it runs on the lab's systemd hosts with python3).

Reads its signing secrets from the environment once, at start (systemd EnvironmentFile), in
the env layout of webhook_rotate.yml:

    <VAR>        the secret in use (until a handshake completes, the old one)
    <VAR>_NEW    while both are accepted: the new secret
    <VAR>_OLD    while both are accepted: the old secret

where <VAR> is named by SECRET_ENV_VAR (default WEBHOOK_SECRET). A delivery is accepted when
its signature (header SIGNATURE_HEADER, value "t=<ts>,v1=<hex>" of HMAC-SHA256 over
"<ts>.<body>") matches any of them; every comparison is constant-time (hmac.compare_digest).

    POST /webhook      a delivery: 200 {"accepted": true, "matched": "new"} or 401
    GET  /deliveries   the delivery log: {"deliveries": [{time, matched, status, event_id,
                       type, source, reason}]}; matched is new, old, current or none (which
                       secret matched, checked in that order); never a secret or a signature
    GET  /health       {"status": "up", "accepts": ["current", "new", "old"]} (names only)

The log is a JSON-lines file (DELIVERY_LOG), so it survives restarts.
Environment: SECRET_ENV_VAR, LISTEN_PORT (default 8091), DELIVERY_LOG, SIGNATURE_HEADER
(default X-Webhook-Signature), SIGNATURE_TOLERANCE (seconds, default 300).
"""
import json
import os
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:  # installed next to this file on the lab hosts (a copy of plugins/module_utils/_webhook.py)
    import _webhook
except ImportError:  # pragma: no cover - running from the checkout
    from ansible_collections.credops.rotation.plugins.module_utils import _webhook

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


def check(body, header):
    """(label of the secret that matched or 'none', reason)."""
    res = _webhook.verify([value for _label, value in SECRETS], body, header=header, tolerance=TOLERANCE)
    if not res["valid"]:
        return "none", res["reason"]
    return SECRETS[res["matched"]][0], "ok"


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
