# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What systemd_consumer does on the consumer host: set the lines of the environment files, then
restart each service whose lines changed once and wait until it is active.

Python's standard library only, and nothing else of the collection but _env_file: the
systemd_consumer action plugin sends this file and _env_file as one program on the connection's
stdin when the connection pipelines (plugin_utils/host_program.py), which spares each host the
AnsiballZ wrapper and ansible.module_utils.basic (about 0.15 s of CPU per host); otherwise the
module runs the same code. No value is ever put in the report or a message."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import tempfile
import time

from ansible_collections.credops.rotation.plugins.module_utils import _env_file

POLL_SECONDS = 0.25
# security.selinux, when the file system has it: the replaced file keeps the old one's label
_XATTRS = ("security.selinux",)


def _label(entry):
    return " ".join(x for x in (entry.get("credential"), entry["name"]) if x) or entry["name"]


def _run(argv):
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=dict(os.environ, LC_ALL="C"), universal_newlines=True)
    out, err = proc.communicate()
    return proc.returncode, out, err


def _write(path, text, old):
    """Replace ``path`` with ``text`` atomically (rename in the same directory), mode 0600 from the
    start, keeping the owner, group and SELinux label of the old file (``old``: its stat, or None
    when there is none)."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(prefix=".credops-", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        if old is not None and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
            try:
                os.fchown(fd, old.st_uid, old.st_gid)
            except OSError:
                pass  # only root gives a file away: it then belongs to whoever wrote it
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        for name in _XATTRS if old is not None and hasattr(os, "getxattr") else ():
            try:
                os.setxattr(tmp, name, os.getxattr(path, name))
            except OSError:
                pass  # no such attribute, or a file system without it
        os.rename(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _stat(path):
    """``path``'s stat, or None when it does not exist."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _edit_files(entries, check_mode):
    """Set the lines, file by file (each entry has its ``_line``). Returns {path: error} for the
    files that could not be written; marks each entry ``changed``."""
    by_path = {}
    for entry in entries:
        by_path.setdefault(entry["path"], []).append(entry)
    errors = {}
    for path, group in by_path.items():
        try:
            old, stat = "", _stat(path)
            if stat is not None:
                with open(path) as handle:
                    old = handle.read()
            new = _env_file.set_lines(old, [(e["name"], e["_line"]) for e in group])
            for entry in group:
                entry["changed"] = _env_file.set_lines(old, [(entry["name"], entry["_line"])]) != old
            mode_wrong = stat is not None and (stat.st_mode & 0o7777) != 0o600
            if (new != old or mode_wrong or stat is None) and not check_mode:
                _write(path, new, stat)
        except (IOError, OSError) as exc:
            errors[path] = "cannot write %s: %s" % (path, exc.strerror or exc)
    return errors


def _is_active(service):
    _rc, out, _err = _run(["systemctl", "is-active", service])
    return out.strip() or "unknown"


def _restart_and_wait(services, timeout):
    """Restart each of ``services`` once, then wait for all of them to be active."""
    outcome = {}
    for service in services:
        rc, _out, err = _run(["systemctl", "restart", service])
        if rc != 0:
            outcome[service] = dict(restarted=False, state=_is_active(service), failed=True, waited=0.0,
                                    step="restart", msg="Unable to restart service %s: %s" % (service, err.strip() or "rc %d" % rc))
        else:
            outcome[service] = dict(restarted=True, state="", failed=False, msg="", waited=0.0)
    waiting = [s for s in services if not outcome[s]["failed"]]
    start = time.monotonic()
    deadline = start + max(timeout, 0)
    while waiting:
        for service in list(waiting):
            state = _is_active(service)
            outcome[service]["state"] = state
            if state == "active":
                outcome[service]["waited"] = round(time.monotonic() - start, 2)
                waiting.remove(service)
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    for service in waiting:
        outcome[service].update(failed=True, step="wait", waited=round(time.monotonic() - start, 2),
                                msg="%s is not active %d s after its restart (systemctl is-active: %s)"
                                    % (service, timeout, outcome[service]["state"]))
    return outcome


def apply(entries, timeout=60, check_mode=False):
    """Set ``entries`` (path, name, value, service, restart, credential, consumer) and restart their
    services. Returns the report: {changed, failed, msg, entries: [per entry: credential, consumer,
    path, name, service, changed, restarted, failed, msg, step], services: {service: {restarted,
    state, failed, msg, waited}}}. A value no environment file can carry refuses the whole batch
    before anything is written."""
    entries = [dict(e) for e in entries]
    refused = []
    for entry in entries:
        if entry.get("value") is None:   # the action plugin sends no refused entry here
            refused.append("%s has no value%s" % (_label(entry), ": " + entry["refused"] if entry.get("refused") else ""))
            continue
        try:
            entry["_line"] = "%s=%s" % (entry["name"], _env_file.quote(entry["value"], _label(entry)))
        except _env_file.EnvFileError as exc:
            refused.append(str(exc))
    if refused:
        return dict(changed=False, failed=True, msg="Nothing was written: " + "; ".join(refused), entries=[], services={})

    file_errors = _edit_files(entries, check_mode)
    services, restart = [], set()
    for entry in entries:
        if entry["service"] not in services:
            services.append(entry["service"])
        if entry["path"] in file_errors:
            continue
        if entry.get("changed") or entry.get("restart"):
            restart.add(entry["service"])
    todo = [s for s in services if s in restart]
    if check_mode:
        outcome = dict((s, dict(restarted=True, state="", failed=False, msg="", waited=0.0)) for s in todo)
    else:
        outcome = _restart_and_wait(todo, timeout)
    for service in services:
        outcome.setdefault(service, dict(restarted=False, state="", failed=False, msg="", waited=0.0))

    results = []
    for entry in entries:
        error = file_errors.get(entry["path"]) or outcome[entry["service"]]["msg"]
        step = "write" if entry["path"] in file_errors else outcome[entry["service"]].get("step", "")
        results.append(dict(credential=entry.get("credential", ""), consumer=entry.get("consumer", ""),
                            path=entry["path"], name=entry["name"], service=entry["service"],
                            changed=bool(entry.get("changed")), restarted=outcome[entry["service"]]["restarted"],
                            failed=bool(error), msg=error, step=step if error else ""))
    changed = any(r["changed"] for r in results) or any(o["restarted"] for o in outcome.values())
    errors = sorted(set(r["msg"] for r in results if r["failed"]))
    return dict(changed=changed, failed=bool(errors), msg="; ".join(errors), entries=results, services=outcome)
