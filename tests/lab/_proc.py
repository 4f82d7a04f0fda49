"""Process helpers shared by the lab parts: free ports, bounded waits, clean kills, and the
base of the lab's own HTTP services run as processes (the demo provider, the webhook sender)."""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(check, timeout, interval=0.1, what="service"):
    """Call check() until it returns a truthy value; bounded by timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - anything means "not yet"
            last = exc
        time.sleep(interval)
    raise TimeoutError("%s not ready after %ss (last error: %s)" % (what, timeout, last))


def http_ok(url, headers=None, timeout=2):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500


def start(argv, log_path, env=None, cwd=None, user=None):
    """Start a long-running process in its own process group, output to log_path."""
    log = open(log_path, "ab")
    kwargs = {}
    if user is not None:
        import pwd
        pw = pwd.getpwnam(user)

        def demote():
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        kwargs["preexec_fn"] = demote
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, cwd=cwd, start_new_session=True, **kwargs)
    log.close()
    return proc


def stop(proc, timeout=10):
    """Terminate a process group started by start(); kill it if it does not go."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=timeout)


def service_parser(doc):
    """The command line every lab HTTP service takes: --bind (repeatable), --port, --admin-token."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--bind", action="append", default=None)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--admin-token", required=True)
    return ap


def serve_on(binds, port, handler, state):
    """Serve ``handler`` on ``port`` of every address in ``binds`` (default 127.0.0.1), all
    sharing ``state`` (``server.state`` in the handler); blocks in the first server."""
    servers = []
    for addr in binds or ["127.0.0.1"]:
        srv = ThreadingHTTPServer((addr, port), handler)
        srv.daemon_threads = True
        srv.state = state
        servers.append(srv)
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    servers[0].serve_forever()


class LabService:
    """One of the lab's demo HTTP services, started as ``python -m MODULE`` and looked at from
    tests with plain urllib (an independent client). Subclasses set the class attributes and
    may add command line arguments (extra_args)."""

    module = None           # python -m <module>
    admin_token = None
    what = "lab service"    # for messages
    log_name = "service.log"
    call_timeout = 15

    def __init__(self, workdir, port=None, binds=("127.0.0.1",)):
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.binds = list(binds)
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def url_on(self, addr):
        return "http://%s:%d" % (addr, self.port)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def extra_args(self):
        return []

    def start(self, timeout=20):
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", self.module, "--port", str(self.port),
                "--admin-token", self.admin_token] + self.extra_args()
        for b in self.binds:
            argv += ["--bind", b]
        self.proc = start(argv, self.workdir / self.log_name, cwd=str(Path(__file__).resolve().parents[2]))
        wait_until(lambda: http_ok(self.url + "/_lab/requests"), timeout, what=self.what)
        return self

    def stop(self):
        stop(self.proc)
        self.proc = None

    def call(self, method, path, body=None, token=None):
        """(status, JSON body or None) of one request, as the admin unless ``token`` is given."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": "Bearer " + (token or self.admin_token), "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.call_timeout) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, (json.loads(raw) if raw else None)

    def requests(self):
        """The service's own log of the requests it answered."""
        return self.call("GET", "/_lab/requests")[1]["requests"]
