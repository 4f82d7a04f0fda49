#!/usr/bin/env python3
"""Demo consumer application (stdlib only: it runs on the lab's systemd hosts).

Reads its API key from the environment once, at start (systemd EnvironmentFile), and
serves GET /health/payment-integration: {"status":"healthy","payment_gateway":"connected"}
only while the provider accepts that key (200 from the provider's /v1/test), else 503.

Environment: KEY_ENV_VAR (name of the variable holding the key, default PAYMENT_API_KEY),
PROVIDER_URL, LISTEN_PORT (default 8080).
"""
import json
import os
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = os.environ.get(os.environ.get("KEY_ENV_VAR", "PAYMENT_API_KEY"), "")
PROVIDER = os.environ.get("PROVIDER_URL", "http://127.0.0.1:8000").rstrip("/")
PORT = int(os.environ.get("LISTEN_PORT", "8080"))


def provider_accepts():
    req = urllib.request.Request(PROVIDER + "/v1/test", headers={"Authorization": "Bearer " + KEY})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        if self.path == "/health/payment-integration":
            ok = bool(KEY) and provider_accepts()
            body = {"status": "healthy", "payment_gateway": "connected"} if ok else \
                {"status": "unhealthy", "payment_gateway": "rejected"}
            code = 200 if ok else 503
        elif self.path == "/health":
            body, code = {"status": "up"}, 200
        else:
            body, code = {"error": "not_found"}, 404
        payload = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
