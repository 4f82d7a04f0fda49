"""The lab as a daemon: one long-running owner process, for tools whose steps are separate runs.

Every part of the lab (OpenBao, moto, the demo provider, the systemd hosts, the Kubernetes
emulator) lives as long as the Python process that started it. Molecule's create, converge
and destroy are separate ansible-playbook runs, so ``up`` starts that owner in the background
(its own session, stdio to DIR/daemon.log) and returns once the lab is ready; ``down`` signals
it to tear everything down and waits for it.

    python -m tests.lab up   --dir DIR [--hosts N] [--k8s]       start; exit 0 once ready (or already running)
    python -m tests.lab down --dir DIR                           stop it, or clean up after a crashed owner
    python -m tests.lab seed --dir DIR --inventory FILE          seed an API key, install the consumers,
                                                                 write an inventory with the credential

DIR while the lab runs:
    lab.json       (mode 0600) ready flag, owner pid, addresses, the lab's environment
                   (VAULT_TOKEN is the lab's dev-mode root token: lab-only)
    inventory.yml  the base inventory (Lab.inventory(): localhost, the hosts, the lab's addresses)
    daemon.log     the owner's output
    openbao/ moto/ provider/ hosts/ k8s/   each part's own files, as for Lab
"""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INFO = "lab.json"
INVENTORY = "inventory.yml"
LOG = "daemon.log"
# How long `up` waits: the hosts may first wait for another lab on this machine
# (CREDLAB_WAIT, see hosts.SystemdHosts._wait_for_other_lab), then boot.
START_MARGIN = 240


def lab_dir_arg(value):
    """argparse type: an absolute path (the CLI changes directory before it runs)."""
    return Path(value).expanduser().resolve()


def add_parsers(sub):
    """The `up` and `seed` subcommands of python -m tests.lab."""
    p = sub.add_parser("up", help="start the whole lab in the background; exit 0 once it is ready")
    p.add_argument("--dir", type=lab_dir_arg, required=True, help="the lab's directory (lab.json, inventory.yml)")
    p.add_argument("--hosts", type=int, default=2, help="number of systemd hosts (0: none)")
    p.add_argument("--k8s", action="store_true", help="also start the Kubernetes API emulator")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds to wait for the lab (default: CREDLAB_WAIT + %d)" % START_MARGIN)
    p.add_argument("--ttl", type=float, default=0,
                   help="the owner tears the lab down by itself after this many seconds (0: never)")
    p = sub.add_parser("seed", help="seed an API key in a running lab, install the demo consumer, write an inventory")
    p.add_argument("--dir", type=lab_dir_arg, required=True)
    p.add_argument("--credential", default="payment-gateway-api")
    p.add_argument("--group", default=None, help="inventory group of the consumer hosts (default: all lab hosts)")
    p.add_argument("--inventory", type=lab_dir_arg, required=True, help="where to write the inventory")


def add_down_options(parser):
    parser.add_argument("--dir", type=lab_dir_arg, default=None,
                        help="stop the lab started by `up --dir DIR` (default: clean up after a crashed demo)")
    parser.add_argument("--timeout", type=float, default=120)


# --------------------------------------------------------------------------- lab.json

def _log(msg):
    print("[credlab-daemon] %s" % msg, file=sys.stderr, flush=True)


def _write_private(path, text):
    """Write a file readable by its owner only (0600 from its creation on), atomically."""
    path = Path(path)
    tmp = path.with_name(".%s.tmp.%d" % (path.name, os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_info(lab_dir):
    try:
        return json.loads((Path(lab_dir) / INFO).read_text())
    except (OSError, ValueError):
        return None


def _write_info(lab_dir, info):
    _write_private(Path(lab_dir) / INFO, json.dumps(info, indent=2, sort_keys=True))


def _owner_alive(info):
    from tests.lab.hosts import _alive
    return bool(info) and _alive(info.get("owner_pid"), info.get("owner_start"))


def _forget(lab_dir):
    for name in (INFO, INVENTORY):
        with contextlib.suppress(FileNotFoundError):
            (Path(lab_dir) / name).unlink()


def _describe(lab):
    """The non-secret addresses of a started lab, plus its environment (lab-only tokens)."""
    info = {
        "env": lab.env(),
        "openbao": {"addr": lab.openbao.addr, "port": lab.openbao.port},
        "moto": {"endpoint_url": lab.moto.endpoint_url, "port": lab.moto.port},
        "provider": {"url": lab.provider.url, "port": lab.provider.port},
        "inventory": str(lab.workdir / INVENTORY),
        "audit_log": str(lab.workdir / "rotation-audit.jsonl"),
        "hosts": [],
    }
    if lab.systemd:
        info["gateway"] = lab.systemd.gateway
        info["provider"]["url_for_hosts"] = lab.provider.url_on(lab.systemd.gateway)
        info["ssh_key"] = str(lab.systemd.ssh_key)
        info["host_prefix"] = lab.host_prefix
        info["hosts"] = [{"name": h.name, "address": h.address, "pid": h.pid, "pid_start": h.pid_start}
                         for h in lab.hosts]
    if lab.k8s:
        info["k8s"] = {"url": lab.k8s.url, "port": lab.k8s.port, "kubeconfig": str(lab.k8s.kubeconfig_path)}
    return info


# --------------------------------------------------------------------------- the owner

class _Stop(BaseException):
    """Raised in the owner by a stop signal that arrives while the lab is still starting."""


def serve(lab_dir, hosts=2, k8s=False, ttl=0):
    """The owner process: start the lab, publish lab.json, wait for a signal, tear down."""
    from tests.lab.hosts import _proc_start
    from tests.lab.lab import Lab

    lab_dir = Path(lab_dir)
    phase = {"now": "starting", "signal": None, "raised": False}

    def on_signal(signum, _frame):
        phase["signal"] = signum
        if phase["now"] == "starting" and not phase["raised"]:
            phase["raised"] = True
            raise _Stop(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    info = {"version": 1, "dir": str(lab_dir), "owner_pid": os.getpid(), "owner_start": _proc_start(os.getpid()),
            "ready": False, "status": "starting", "log": str(lab_dir / LOG),
            "requested": {"hosts": hosts, "k8s": k8s}, "procs": [], "started": time.time()}

    class OwnedLab(Lab):
        def _start(self, service):
            # Record each service process as soon as it runs, so that `down` can still
            # stop it if this owner is killed (SIGKILL) before or after the lab is ready.
            started = super()._start(service)
            proc = getattr(service, "proc", None)
            if proc is not None:
                info["procs"].append({"name": type(service).__name__, "pid": proc.pid,
                                      "pid_start": _proc_start(proc.pid)})
                _write_info(lab_dir, info)
            return started

    _write_info(lab_dir, info)
    _log("owner pid %d starting the lab in %s (hosts=%d, k8s=%s)" % (os.getpid(), lab_dir, hosts, k8s))
    lab = OwnedLab(lab_dir, hosts=hosts, k8s=k8s)
    t0 = time.monotonic()
    try:
        lab.start()
    except _Stop:
        phase["now"] = "stopping"
        lab.stop()              # a no-op when start() already tore down what it had started
        _log("stop requested while starting: the lab was torn down")
        _forget(lab_dir)
        return 0
    except BaseException as exc:  # noqa: BLE001 - report every failure in lab.json and the log
        traceback.print_exc()
        info.update(status="failed", error="%s: %s" % (type(exc).__name__, exc))
        _write_info(lab_dir, info)
        return 1
    rc = 0
    phase["now"] = "up"         # from here on a signal only sets the flag the loop below reads
    try:
        if phase["signal"] is None:
            lab.write_inventory(lab_dir / INVENTORY)
            info.update(_describe(lab), ready=True, status="ready", up_seconds=round(time.monotonic() - t0, 1))
            _write_info(lab_dir, info)
            _log("lab ready in %.1fs" % (time.monotonic() - t0))
        deadline = time.monotonic() + ttl if ttl else None
        reported = set()
        while phase["signal"] is None:
            if deadline and time.monotonic() > deadline:
                _log("time to live (%ss) is over: tearing the lab down" % ttl)
                break
            for service in (lab.openbao, lab.moto, lab.provider, lab.k8s):
                proc = getattr(service, "proc", None)
                name = type(service).__name__
                if proc is not None and proc.poll() is not None and name not in reported:
                    reported.add(name)
                    _log("%s exited with %s; the lab is degraded" % (name, proc.returncode))
                    info["status"] = "degraded: %s exited" % name
                    _write_info(lab_dir, info)
            time.sleep(0.5)
    finally:
        phase["now"] = "stopping"
        if phase["signal"] is not None:
            _log("signal %d: tearing the lab down" % phase["signal"])
        info.update(ready=False, status="stopping")
        with contextlib.suppress(OSError):
            _write_info(lab_dir, info)
        try:
            lab.stop()
        except Exception as exc:  # noqa: BLE001
            _log("teardown: %s" % exc)
            rc = 1
        _forget(lab_dir)
        _log("lab stopped")
    return rc


# --------------------------------------------------------------------------- up / down

def _tail(path, lines=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log at %s)" % path


def _summary(info):
    hosts = ", ".join("%s=%s" % (h["name"], h["address"]) for h in info.get("hosts") or []) or "none"
    parts = ["OpenBao %s" % info["openbao"]["addr"], "moto %s" % info["moto"]["endpoint_url"],
             "provider %s" % info["provider"]["url"], "hosts %s" % hosts]
    if info.get("k8s"):
        parts.append("Kubernetes emulator %s" % info["k8s"]["url"])
    return "; ".join(parts)


def up(lab_dir, hosts=2, k8s=False, timeout=None, ttl=0):
    """Start the owner in the background and wait (bounded) until the lab is ready."""
    lab_dir = Path(lab_dir)
    lab_dir.mkdir(parents=True, exist_ok=True)
    if timeout is None:
        timeout = float(os.environ.get("CREDLAB_WAIT", "480")) + START_MARGIN
    from tests.lab.hosts import _flock
    # serialise up/down on one DIR (never held while waiting for a lab to come up)
    with _flock(Path(lab_dir) / ".daemon.lock", timeout=30):
        info = read_info(lab_dir)
        if info and _owner_alive(info):
            if info.get("ready"):
                print("lab already running in %s (owner pid %d): %s" % (lab_dir, info["owner_pid"], _summary(info)))
                want = {"hosts": hosts, "k8s": k8s}
                if info.get("requested") != want:
                    print("note: it was started with %s, not %s" % (info.get("requested"), want), file=sys.stderr)
                return 0
            owner = None            # still starting: wait for it below
            pid = info["owner_pid"]
        else:
            if info:
                _log("the owner of %s is gone: cleaning up what it left" % lab_dir)
                _reap(lab_dir, info)
            log = open(lab_dir / LOG, "ab")  # noqa: SIM115 - handed to the child
            try:
                owner = subprocess.Popen(
                    [sys.executable, "-m", "tests.lab.daemon", "serve", "--dir", str(lab_dir),
                     "--hosts", str(hosts), "--ttl", str(ttl)] + (["--k8s"] if k8s else []),
                    cwd=str(ROOT), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True)
            finally:
                log.close()
            pid = owner.pid
    started = time.monotonic()
    announced = set()
    while True:
        info = read_info(lab_dir)
        if info and info.get("owner_pid") == pid:
            if info.get("ready"):
                print("lab ready in %s (owner pid %d, %.0fs): %s" % (
                    lab_dir, pid, time.monotonic() - started, _summary(info)))
                print("inventory: %s" % (lab_dir / INVENTORY))
                return 0
            if info.get("status") == "failed":
                break
        exited = owner.poll() is not None if owner is not None else not _owner_alive(info)
        if exited:
            break
        if time.monotonic() - started > timeout:
            if owner is None:       # another `up` started it and waits for it: leave it be
                print("lab in %s not ready within %.0fs (still starting, owner pid %d)" % (lab_dir, timeout, pid),
                      file=sys.stderr)
                return 1
            print("lab not ready within %.0fs: stopping it" % timeout, file=sys.stderr)
            down(lab_dir, quiet=True)
            break
        if "waiting for it to finish" in _tail(lab_dir / LOG, 5) and "wait" not in announced:
            announced.add("wait")
            print("another lab holds the hosts' bridge on this machine: waiting for it (CREDLAB_WAIT)",
                  file=sys.stderr, flush=True)
        time.sleep(0.3)
    if owner is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            owner.wait(timeout=30)
    info = read_info(lab_dir)
    if info and not _owner_alive(info):
        _reap(lab_dir, info)
    print("lab in %s did not come up%s; last lines of %s:\n%s" % (
        lab_dir, (": " + info["error"]) if info and info.get("error") else "",
        lab_dir / LOG, _tail(lab_dir / LOG)), file=sys.stderr)
    return 1


def _kill_proc(rec, timeout=10):
    """Stop one recorded service process (its process group when it leads one)."""
    from tests.lab.hosts import _alive
    pid, start = rec.get("pid"), rec.get("pid_start")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _alive(pid, start):
            return True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid, start):
            time.sleep(0.1)
    return not _alive(pid, start)


def _reap(lab_dir, info):
    """What a dead owner left: its service processes, then the hosts (hosts.cleanup_stale)."""
    from tests.lab.hosts import cleanup_stale
    warnings = []
    for rec in (info or {}).get("procs") or []:
        if not _kill_proc(rec):
            warnings.append("could not stop %s (pid %s)" % (rec.get("name"), rec.get("pid")))
    warnings += cleanup_stale(Path(lab_dir) / "hosts")
    _forget(lab_dir)
    return warnings


def down(lab_dir, timeout=120, quiet=False):
    """Signal the owner to tear the lab down and wait for it; clean up after a dead owner."""
    from tests.lab.hosts import cleanup_stale
    lab_dir = Path(lab_dir)
    say = (lambda *a, **k: None) if quiet else print
    info = read_info(lab_dir)
    if info is None:
        warnings = cleanup_stale(lab_dir / "hosts") if lab_dir.is_dir() else []
        for w in warnings:
            print(w, file=sys.stderr)
        say("no lab running in %s" % lab_dir)
        return 1 if warnings else 0
    pid = info.get("owner_pid")
    if _owner_alive(info):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _owner_alive(info) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _owner_alive(info):
            print("owner pid %d did not stop within %.0fs: killing it" % (pid, timeout), file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            end = time.monotonic() + 10
            while _owner_alive(info) and time.monotonic() < end:
                time.sleep(0.1)
    else:
        say("the owner of %s (pid %s) is gone: cleaning up what it left" % (lab_dir, pid))
    warnings = _reap(lab_dir, info)
    for w in warnings:
        print(w, file=sys.stderr)
    say("lab in %s stopped" % lab_dir)
    return 1 if warnings else 0


# --------------------------------------------------------------------------- attach / seed

def attach(lab_dir):
    """A Lab object for the running lab in lab_dir (not started here; never stop it)."""
    from tests.lab.hosts import SystemdHosts
    from tests.lab.k8s_emulator import K8sEmulator
    from tests.lab.lab import Lab
    from tests.lab.moto import Moto
    from tests.lab.openbao import OpenBao
    from tests.lab.provider import Provider

    lab_dir = Path(lab_dir)
    info = read_info(lab_dir)
    if not (info and info.get("ready") and _owner_alive(info)):
        raise RuntimeError("no lab running in %s: start one with python -m tests.lab up --dir %s" % (lab_dir, lab_dir))
    lab = Lab(lab_dir, hosts=len(info["hosts"]), host_prefix=info.get("host_prefix", "web"))
    lab.openbao = OpenBao(lab_dir / "openbao", port=info["openbao"]["port"])
    lab.moto = Moto(lab_dir / "moto", port=info["moto"]["port"])
    lab.provider = Provider(lab_dir / "provider", port=info["provider"]["port"])
    if info["hosts"]:
        lab.systemd = SystemdHosts(lab_dir / "hosts", count=len(info["hosts"]), prefix=lab.host_prefix)
        for host, rec in zip(lab.systemd.hosts, info["hosts"]):
            host.pid, host.pid_start = rec["pid"], rec["pid_start"]
            if not host.alive():
                raise RuntimeError("lab host %s (pid %s) is not running" % (host.name, host.pid))
    if info.get("k8s"):
        lab.k8s = K8sEmulator(lab_dir / "k8s", port=info["k8s"]["port"])
    return lab


def seed(lab_dir, inventory, credential="payment-gateway-api", group=None):
    """The state before a first rotation (tests/lab/scenarios.py), and an inventory that holds
    the credential. The record reads the lab's tokens from lab.json at run time (lab_env), so
    ansible-playbook needs none of the lab's environment variables."""
    import yaml

    from tests.lab import scenarios

    lab = attach(lab_dir)
    key_id, _secret = scenarios.seed_api_key(lab, credential)
    group = group or lab.host_prefix
    record = scenarios.api_key_record(lab, credential, group=group)
    record["issuer"]["auth"]["token"] = "{{ lab_env.PROVIDER_ADMIN_TOKEN }}"
    record["store"]["token"] = "{{ lab_env.VAULT_TOKEN }}"
    extra = {"lab_json": str(Path(lab_dir) / INFO),
             "lab_env": "{{ (lookup('ansible.builtin.file', lab_json) | from_json)['env'] }}"}
    inv = lab.inventory(groups={group: [h.name for h in lab.hosts]}, credentials={credential: record},
                        extra_vars=extra)
    Path(inventory).parent.mkdir(parents=True, exist_ok=True)
    _write_private(inventory, yaml.safe_dump(inv, sort_keys=False))
    print("seeded %s: key %s at the provider, in the store (%s/api-credentials/%s) and in the consumer on %s; "
          "inventory %s" % (credential, key_id, scenarios.KV_MOUNT, credential,
                            ", ".join(h.name for h in lab.hosts) or "no host", inventory))
    return 0


# --------------------------------------------------------------------------- CLI glue

def up_cmd(args):
    return up(args.dir, hosts=args.hosts, k8s=args.k8s, timeout=args.timeout, ttl=args.ttl)


def down_cmd(args):
    return down(args.dir, timeout=args.timeout)


def seed_cmd(args):
    return seed(args.dir, args.inventory, credential=args.credential, group=args.group)


def _main(argv=None):
    """python -m tests.lab.daemon serve ...: the owner itself (started by `up`)."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m tests.lab.daemon")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve")
    p.add_argument("--dir", type=lab_dir_arg, required=True)
    p.add_argument("--hosts", type=int, default=2)
    p.add_argument("--k8s", action="store_true")
    p.add_argument("--ttl", type=float, default=0)
    args = ap.parse_args(argv)
    return serve(args.dir, hosts=args.hosts, k8s=args.k8s, ttl=args.ttl)


if __name__ == "__main__":
    sys.exit(_main())
