"""Demo consumer application (stdlib only: it runs on the lab's systemd hosts).

Reads its API key from the environment once, at start (systemd EnvironmentFile), and
serves GET /health/payment-integration: {"status":"healthy","payment_gateway":"connected"}
only while the provider accepts that key (200 from the provider's /v1/test), else 503.
GET /health/env/NAME does the same for the key in the environment variable NAME (a service
holding several credentials). GET /health answers {"status":"up"}.

Environment: KEY_ENV_VAR (name of the variable holding the key, default PAYMENT_API_KEY),
PROVIDER_URL, LISTEN_PORT (default 8080; 0: no plain HTTP listener).

TLS mode, when TLS_CERT_FILE and TLS_KEY_FILE are set: the same endpoints are also served
over HTTPS on TLS_PORT (default 8443), with the certificate (and the chain that follows it
in the file) and key read from those files at start, and read again on SIGHUP (systemd
ExecReload=/bin/kill -HUP $MAINPID). The app does not start when they cannot be loaded.
"""
import json
import os
import signal
import ssl
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = os.environ.get(os.environ.get("KEY_ENV_VAR", "PAYMENT_API_KEY"), "")
PROVIDER = os.environ.get("PROVIDER_URL", "http://127.0.0.1:8000").rstrip("/")
PORT = int(os.environ.get("LISTEN_PORT", "8080"))
TLS_CERT_FILE = os.environ.get("TLS_CERT_FILE", "")
TLS_KEY_FILE = os.environ.get("TLS_KEY_FILE", "")
TLS_PORT = int(os.environ.get("TLS_PORT", "8443"))


def provider_accepts(key=None):
    req = urllib.request.Request(PROVIDER + "/v1/test", headers={"Authorization": "Bearer " + (key or KEY)})
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
        elif self.path.startswith("/health/env/"):
            key = os.environ.get(self.path[len("/health/env/"):], "")
            ok = bool(key) and provider_accepts(key)
            body = {"status": "healthy" if ok else "unhealthy"}
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


def tls_context():
    """A server context with the certificate (chain) and key of the files, as they are now."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS_CERT_FILE, TLS_KEY_FILE)
    return context


class TLSServer(ThreadingHTTPServer):
    """HTTPS with a context that can be swapped (SIGHUP): each connection is wrapped with the
    context current when it was accepted; the handshake runs in the connection's thread."""
    daemon_threads = True

    def __init__(self, address, handler, context):
        super().__init__(address, handler)
        self.context = context

    def get_request(self):
        sock, addr = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # a client that went away, a failed handshake: nothing to report


def main():
    servers = []
    if PORT:
        servers.append(ThreadingHTTPServer(("0.0.0.0", PORT), Handler))
    if TLS_CERT_FILE and TLS_KEY_FILE:
        try:
            context = tls_context()
        except (OSError, ssl.SSLError) as exc:
            sys.stderr.write("cannot load %s / %s: %s\n" % (TLS_CERT_FILE, TLS_KEY_FILE, exc))
            return 1
        tls = TLSServer(("0.0.0.0", TLS_PORT), Handler, context)
        servers.append(tls)

        def reload(_signum, _frame):
            try:
                tls.context = tls_context()
            except (OSError, ssl.SSLError) as exc:  # keep serving the certificate already loaded
                sys.stderr.write("reload failed, still serving the previous certificate: %s\n" % exc)

        signal.signal(signal.SIGHUP, reload)
    if not servers:
        sys.stderr.write("nothing to serve: LISTEN_PORT is 0 and TLS is not configured\n")
        return 1
    for server in servers[:-1]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    servers[-1].serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
