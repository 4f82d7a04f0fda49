"""A create whose answer is lost is not sent again (a second POST would make a second live key
that no store holds and nobody revokes), while a refused connection is retried: against a
real HTTP server on loopback that makes a key and then drops the connection unanswered."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.lab.ansible_runner import run_module

ADMIN = "admin-token-not-resent-test"


class _LosesAnswers(BaseHTTPRequestHandler):
    created = []

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).created.append(self.path)  # the key exists now; its answer never leaves
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def losing_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LosesAnswers)
    _LosesAnswers.created = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % server.server_address[1], _LosesAnswers.created
    server.shutdown()
    server.server_close()


def _issuer(base_url):
    return {"kind": "rest", "base_url": base_url, "auth": {"type": "bearer", "token": ADMIN}, "retries": 3,
            "create": {"method": "POST", "path": "/v1/api-keys", "body": {"name": "x"}, "secret_path": "api_key",
                       "id_path": "id"},
            "revoke": {"method": "DELETE", "path": "/v1/api-keys/{id}"}}


def test_a_lost_answer_to_a_create_is_not_resent(losing_server):
    url, created = losing_server
    result, proc = run_module("credops.rotation.issue_key", {"credential": "lost-201", "issuer": _issuer(url)})
    assert result["failed"]
    assert created == ["/v1/api-keys"]  # one POST reached the server: one key, not four
    assert "was not sent again" in result["msg"] and "revoke it" in result["msg"]
    assert ADMIN not in proc.stdout + proc.stderr


def test_a_refused_create_is_retried_with_a_warning():
    import socket
    with socket.socket() as sock:  # a port nobody listens on: refused, so never arrived
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    issuer = dict(_issuer("http://127.0.0.1:%d" % port), retries=2)
    result, _proc = run_module("credops.rotation.issue_key", {"credential": "refused", "issuer": issuer})
    assert result["failed"] and "could not reach the issuer" in result["msg"]
    assert [w.split(";")[0] for w in result["warnings"]] == ["POST /v1/api-keys: ConnectionRefusedError"] * 2
