"""Demo webhook sender: an HTTP API like a payment provider's webhook endpoints.

    POST  /v1/webhooks              (admin bearer) {url, secret} -> 201 {id, url, created_at}
    GET   /v1/webhooks/{id}         (admin bearer) -> {id, url, created_at, updated_at}
    PATCH /v1/webhooks/{id}         (admin bearer) {secret?, url?} -> 200 {id, url, updated_at}
    POST  /v1/webhooks/{id}/test    (admin bearer) -> delivers a signed test event to the url now:
                                    200 {"delivered": bool, "status": <receiver's status>|null,
                                         "event_id"}
    GET   /_lab/requests            every request, without secrets (PATCH says which fields
                                    it set; a test says the receiver's status)

Deliveries are signed like Stripe's: header X-Webhook-Signature "t=<ts>,v1=<hex>" with
HMAC-SHA256 over "<ts>.<body>" (own code here: the sender is a third party, it does not use
the collection). The webhooks (with their secrets: the sender's own database) and the request
log are kept in files under the work dir, so a stopped sender comes back with its state.
Run: python -m tests.lab.webhook_sender --port P --admin-token T --state DIR [--bind ADDR ...]
"""
import hashlib
import hmac
import json
import os
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.lab._proc import LabService, serve_on, service_parser

SIGNATURE_HEADER = "X-Webhook-Signature"


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class State:
    def __init__(self, admin_token, state_dir):
        self.admin_token = admin_token
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = self.dir / "webhooks.json"
        self.log = self.dir / "requests.jsonl"
        self.lock = threading.Lock()
        self.webhooks = json.loads(self.db.read_text()) if self.db.exists() else {}

    def save(self):
        tmp = self.db.with_suffix(".tmp")
        fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.webhooks, fh)
        os.replace(str(tmp), str(self.db))

    def record(self, entry):
        with self.lock:
            with self.log.open("a") as fh:
                fh.write(json.dumps(entry) + "\n")

    def requests(self):
        with self.lock:
            if not self.log.exists():
                return []
            return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


def deliver(url, secret, event, timeout=5):
    """POST the signed event; (receiver status or None, error text or None)."""
    body = json.dumps(event, separators=(",", ":"))
    ts = int(time.time())
    mac = hmac.new(secret.encode(), ("%d.%s" % (ts, body)).encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(url, data=body.encode(), method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "DemoWebhookSender/1.0",
        SIGNATURE_HEADER: "t=%d,v1=%s" % (ts, mac)})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, OSError) as exc:
        return None, type(exc).__name__


class Handler(BaseHTTPRequestHandler):
    server_version = "DemoWebhookSender/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    @property
    def state(self):
        return self.server.state

    def _send(self, status, body=None):
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else {}

    def _admin(self):
        auth = self.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else ""
        return secrets.compare_digest(token, self.state.admin_token)

    def _handle(self, method):
        path = self.path.split("?", 1)[0]
        entry = {"time": now_iso(), "method": method, "path": path, "source": self.client_address[0],
                 "webhook_id": None}
        try:
            status = self._route(method, path, entry)
        except ValueError:
            self._send(400, {"error": "bad_request"})
            status = 400
        entry["status"] = status
        entry["done"] = now_iso()
        if path != "/_lab/requests":
            self.state.record(entry)

    def _public(self, hook):
        return {k: v for k, v in hook.items() if k != "secret"}

    def _route(self, method, path, entry):
        st = self.state
        if path == "/_lab/requests" and method == "GET":
            self._send(200, {"requests": st.requests()})
            return 200
        if not self._admin():
            self._send(401, {"error": "admin token required"})
            return 401
        parts = [p for p in path.split("/") if p]
        if parts[:2] != ["v1", "webhooks"]:
            self._send(404, {"error": "not_found"})
            return 404
        if len(parts) == 2 and method == "POST":
            body = self._body()
            if not body.get("url") or not body.get("secret"):
                self._send(400, {"error": "url and secret are required"})
                return 400
            hook_id = "wh_" + secrets.token_hex(6)
            hook = {"id": hook_id, "url": body["url"], "secret": body["secret"],
                    "created_at": now_iso(), "updated_at": now_iso()}
            with st.lock:
                st.webhooks[hook_id] = hook
                st.save()
            entry["webhook_id"] = hook_id
            self._send(201, self._public(hook))
            return 201
        hook_id = parts[2] if len(parts) >= 3 else None
        entry["webhook_id"] = hook_id
        with st.lock:
            hook = dict(st.webhooks[hook_id]) if hook_id in st.webhooks else None
        if hook is None:
            self._send(404, {"error": "no such webhook"})
            return 404
        if len(parts) == 3 and method == "GET":
            self._send(200, self._public(hook))
            return 200
        if len(parts) == 3 and method == "PATCH":
            body = self._body()
            fields = [f for f in ("secret", "url") if body.get(f)]
            if not fields:
                self._send(400, {"error": "nothing to change (secret, url)"})
                return 400
            with st.lock:
                for field in fields:
                    st.webhooks[hook_id][field] = body[field]
                st.webhooks[hook_id]["updated_at"] = now_iso()
                st.save()
                hook = dict(st.webhooks[hook_id])
            entry["fields"] = fields
            self._send(200, self._public(hook))
            return 200
        if len(parts) == 4 and parts[3] == "test" and method == "POST":
            event = {"id": "evt_" + secrets.token_hex(8), "type": "webhook.test", "created": int(time.time()),
                     "webhook_id": hook_id}
            status, error = deliver(hook["url"], hook["secret"], event)
            entry.update(delivery_status=status, event_id=event["id"])
            body = {"delivered": status is not None and 200 <= status < 300, "status": status,
                    "event_id": event["id"]}
            if error:
                body["error"] = error
            self._send(200, body)
            return 200
        self._send(405, {"error": "method not allowed"})
        return 405

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_DELETE(self):
        self._handle("DELETE")


def main(argv=None):
    ap = service_parser(__doc__)
    ap.add_argument("--state", required=True)
    args = ap.parse_args(argv)
    serve_on(args.bind, args.port, Handler, State(args.admin_token, args.state))


class WebhookSender(LabService):
    """Start/stop the demo webhook sender as a process and look at it from tests. A stopped
    sender starts again on the same port with the same webhooks and request log."""

    module = "tests.lab.webhook_sender"
    admin_token = "lab-webhook-sender-admin-token"
    what = "demo webhook sender"
    log_name = "webhook-sender.log"

    def extra_args(self):
        return ["--state", str(self.workdir)]

    def create_webhook(self, url, secret):
        status, body = self.call("POST", "/v1/webhooks", {"url": url, "secret": secret})
        assert status == 201, (status, body)
        return body["id"]

    def test_delivery(self, hook_id):
        return self.call("POST", "/v1/webhooks/%s/test" % hook_id)[1]


if __name__ == "__main__":
    sys.exit(main())
