"""Process helpers shared by the lab parts: free ports, bounded waits, clean kills."""
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request


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
