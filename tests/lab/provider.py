"""Demo key provider: an HTTP key-management API like a payment provider's.

    POST   /v1/api-keys            (admin bearer) -> 201 {"id", "api_key", "name", "created_at"}
    GET    /v1/api-keys            (admin bearer) -> {"keys": [{id, name, status, created_at, revoked_at}]}
    DELETE /v1/api-keys/{id}       (admin bearer) -> 204; 404 when unknown or already revoked
    GET    /v1/test                (Bearer <api_key>) -> 200 for an active key, 401 otherwise
    GET    /v1/audit-log?api_key_id=..&since=..   (admin bearer) -> {"entries": [...]}

Lab-only, for tests: GET /_lab/requests (every request, without secrets), POST /_lab/faults
{"create": [429, 500, ...]} answers the next create calls with those statuses (429 with
Retry-After: 1). Run: python -m tests.lab.provider --port P --admin-token T [--bind ADDR ...]
"""
import json
import secrets
import sys
import threading
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.lab._proc import LabService, serve_on, service_parser


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class State:
    def __init__(self, admin_token, log_path=None):
        self.admin_token = admin_token
        self.keys = {}          # id -> record (with the secret, never served back but once)
        self.by_secret = {}     # secret -> id
        self.requests = []      # lab log: no secrets
        self.usage = []         # the provider's audit log of key uses
        self.faults = {"create": []}
        self.lock = threading.Lock()
        self.log_path = Path(log_path) if log_path else None

    def record(self, entry):
        with self.lock:
            self.requests.append(entry)
            if self.log_path:
                with self.log_path.open("a") as fh:
                    fh.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    server_version = "DemoKeyProvider/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet; the lab log is structured
        pass

    @property
    def state(self):
        return self.server.state

    def _send(self, status, body=None, headers=None):
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def _bearer(self):
        auth = self.headers.get("Authorization", "")
        return auth[7:].strip() if auth.startswith("Bearer ") else None

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        ctype = self.headers.get("Content-Type", "")
        if "application/x-www-form-urlencoded" in ctype:
            return {k: v[0] if len(v) == 1 else v for k, v in urllib.parse.parse_qs(raw.decode()).items()}
        return json.loads(raw)

    def _handle(self, method):
        parsed = urllib.parse.urlparse(self.path)
        path, query = parsed.path, urllib.parse.parse_qs(parsed.query)
        entry = {"time": now_iso(), "method": method, "path": path,
                 "source": self.client_address[0], "key_id": None}
        status = self._route(method, path, query, entry)
        entry["status"] = status
        self.state.record(entry)

    def _admin(self):
        return secrets.compare_digest(self._bearer() or "", self.state.admin_token)

    def _route(self, method, path, query, entry):
        st = self.state
        if path == "/v1/test" and method == "GET":
            key = self._bearer() or ""
            with st.lock:
                key_id = st.by_secret.get(key)
                rec = st.keys.get(key_id) if key_id else None
                active = bool(rec and rec["status"] == "active")
                if rec:
                    st.usage.append({"timestamp": now_iso(), "api_key_id": key_id,
                                     "source_ip": self.client_address[0], "path": path,
                                     "status": 200 if active else 401})
            entry["key_id"] = key_id
            if active:
                self._send(200, {"status": "ok", "api_key_id": key_id})
                return 200
            self._send(401, {"error": "invalid_api_key"})
            return 401
        if path.startswith("/_lab/"):
            if path == "/_lab/requests" and method == "GET":
                with st.lock:
                    self._send(200, {"requests": list(st.requests)})
                return 200
            if path == "/_lab/faults" and method == "POST":
                body = self._body()
                with st.lock:
                    st.faults["create"] = list(body.get("create", []))
                self._send(200, st.faults)
                return 200
            self._send(404, {"error": "not_found"})
            return 404
        if not self._admin():
            self._send(401, {"error": "admin token required"})
            return 401
        if path == "/v1/api-keys" and method == "POST":
            with st.lock:
                fault = st.faults["create"].pop(0) if st.faults["create"] else None
            if fault:
                self._send(fault, {"error": "injected fault"},
                           {"Retry-After": "1"} if fault == 429 else None)
                return fault
            body = self._body()
            key_id = "key_" + secrets.token_hex(6)
            secret = "sk_live_" + secrets.token_urlsafe(24)
            rec = {"id": key_id, "name": body.get("name", "unnamed"),
                   "permissions": body.get("permissions", []), "status": "active",
                   "created_at": now_iso(), "revoked_at": None}
            with st.lock:
                st.keys[key_id] = dict(rec, secret=secret)
                st.by_secret[secret] = key_id
            entry["key_id"] = key_id
            self._send(201, dict(rec, api_key=secret))
            return 201
        if path == "/v1/api-keys" and method == "GET":
            with st.lock:
                keys = [{k: v for k, v in r.items() if k != "secret"} for r in st.keys.values()]
            self._send(200, {"keys": keys})
            return 200
        if path.startswith("/v1/api-keys/") and method in ("DELETE", "GET"):
            key_id = path.rsplit("/", 1)[1]
            entry["key_id"] = key_id
            with st.lock:
                rec = st.keys.get(key_id)
                if method == "GET":
                    if not rec:
                        self._send(404, {"error": "not_found"})
                        return 404
                    self._send(200, {k: v for k, v in rec.items() if k != "secret"})
                    return 200
                if not rec or rec["status"] != "active":
                    self._send(404, {"error": "not_found"})
                    return 404
                rec["status"] = "revoked"
                rec["revoked_at"] = now_iso()
            self._send(204)
            return 204
        if path == "/v1/audit-log" and method == "GET":
            key_id = (query.get("api_key_id") or [None])[0]
            since = (query.get("since") or [""])[0]
            with st.lock:
                entries = [u for u in st.usage
                           if (not key_id or u["api_key_id"] == key_id) and u["timestamp"] >= since]
            self._send(200, {"entries": entries})
            return 200
        self._send(404, {"error": "not_found"})
        return 404

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_PATCH(self):
        self._handle("PATCH")


def main(argv=None):
    ap = service_parser(__doc__)
    ap.add_argument("--log")
    args = ap.parse_args(argv)
    serve_on(args.bind, args.port, Handler, State(args.admin_token, args.log))


class Provider(LabService):
    """Start/stop the demo provider as a process and look at it from tests."""

    module = "tests.lab.provider"
    admin_token = "lab-provider-admin-token"
    what = "demo provider"
    log_name = "provider.log"

    def extra_args(self):
        return ["--log", str(self.workdir / "provider-requests.jsonl")]

    def create_key(self, name="lab"):
        status, body = self.call("POST", "/v1/api-keys", body={"name": name})
        assert status == 201, (status, body)
        return body["id"], body["api_key"]

    def test_key(self, secret):
        return self.call("GET", "/v1/test", token=secret)[0]

    def keys(self):
        return {k["id"]: k for k in self.call("GET", "/v1/api-keys")[1]["keys"]}

    def inject(self, create_statuses):
        return self.call("POST", "/_lab/faults", body={"create": list(create_statuses)})


if __name__ == "__main__":
    sys.exit(main())
