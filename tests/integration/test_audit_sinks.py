"""The audit trail reaches its durable sinks from a real playbook run, with the AWX user as the
actor: a syslog datagram on a local socket (what /dev/log is to journald, and what `logger`
sends) and a JSON POST to a local HTTP collector, each read by a receiver of the test's own."""
import json
import re
import secrets
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.lab.ansible_runner import run_playbook

TOKEN = "collector-token-" + secrets.token_hex(8)


class _Collector(BaseHTTPRequestHandler):
    received = []
    status = 204

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append((self.path, self.headers.get("Authorization"), json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def collector():
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    _Collector.received, _Collector.status = [], 204
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1], _Collector
    server.shutdown()
    server.server_close()


@pytest.fixture
def syslog_socket(tmp_path):
    path = str(tmp_path / "dev-log")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def _play(tmp_path, extra_vars, events=("issued", "failed")):
    tasks = [{"name": "audit " + event, "credops.rotation.audit_event": {
        "credential": "payment-gateway-api", "event": event, "key_id": "key-1"}} for event in events]
    who = {"content": "{{ lookup('credops.rotation.actor') }}", "dest": str(tmp_path / "actor.txt"), "mode": "0600"}
    tasks.append({"name": "who", "ansible.builtin.copy": who})
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]))
    log = tmp_path / "audit.jsonl"
    proc = run_playbook(book, inventory="localhost,", verbosity=3, cwd=str(tmp_path),
                        extra_vars=dict({"rotation_audit_log": str(log), "ansible_python_interpreter": sys.executable},
                                        **extra_vars),
                        env={"AUDIT_COLLECTOR_TOKEN": TOKEN, "AWX_USER_NAME": "", "USER": "root"})
    entries = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, entries


def test_entries_reach_syslog_and_http_with_the_awx_user(tmp_path, collector, syslog_socket):
    url, handler = collector
    path, sock = syslog_socket
    sinks = [{"type": "syslog", "address": path, "tag": "credops-rotation"},
             {"type": "http", "url": url + "/ingest", "required": True,
              "headers": {"Authorization": "Bearer {{ lookup('ansible.builtin.env', 'AUDIT_COLLECTOR_TOKEN') }}"}}]
    proc, entries = _play(tmp_path, {"rotation_audit_sinks": sinks, "awx_user_name": "alice-awx", "awx_job_id": 42})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert TOKEN not in output
    assert [e["event"] for e in entries] == ["issued", "failed"]
    assert {e["actor"] for e in entries} == {"alice-awx"}
    assert (tmp_path / "actor.txt").read_text() == "alice-awx"
    # syslog: <PRI>TAG: JSON, authpriv (10) x 8 + info (6) / warning (4), one datagram per entry
    datagrams = [sock.recv(65536).decode() for _entry in entries]
    parsed = [re.match(r"^<(\d+)>credops-rotation: (\{.*\})\x00?$", d) for d in datagrams]
    assert all(parsed), datagrams
    assert [int(m.group(1)) for m in parsed] == [86, 84]
    assert [json.loads(m.group(2)) for m in parsed] == entries
    # http: the same entries, with the header from the inventory
    assert [(p, body) for p, _auth, body in handler.received] == [("/ingest", e) for e in entries]
    assert {auth for _p, auth, _b in handler.received} == {"Bearer " + TOKEN}


def test_a_dead_optional_sink_warns_and_a_required_one_fails(tmp_path, collector):
    url, handler = collector
    handler.status = 503
    dead = {"type": "http", "url": url + "/ingest?token=" + TOKEN}
    proc, entries = _play(tmp_path, {"rotation_audit_sinks": [dead]}, events=("issued",))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "not delivered to the http sink http://127.0.0.1 (HTTP 503)" in output
    assert len(entries) == 1 and TOKEN not in output
    proc, entries = _play(tmp_path, {"rotation_audit_sinks": [dict(dead, required=True)]}, events=("issued",))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "not delivered to the http sink http://127.0.0.1 (HTTP 503)" in output
    assert len(entries) == 2  # the file has it either way
    assert TOKEN not in output


def test_a_bad_sink_is_refused_before_anything_is_written(tmp_path):
    proc, entries = _play(tmp_path, {"rotation_audit_sinks": [{"type": "http", "url": "logs.example.org"}]})
    assert proc.returncode != 0
    assert "rotation_audit_sinks[0].url: an http:// or https:// URL is required" in proc.stdout + proc.stderr
    assert entries == []


def test_under_awx_without_a_sink_the_run_says_the_trail_is_lost_with_the_job(tmp_path):
    proc, entries = _play(tmp_path, {"awx_job_id": 42, "awx_user_name": "alice-awx",
                                     "rotation_audit_log": "rotation-audit-awx-test.jsonl"}, events=("issued",))
    assert proc.returncode == 0
    assert "lost with the job's container" in proc.stdout + proc.stderr
