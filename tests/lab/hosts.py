"""Real systemd hosts for the lab, without Docker.

Each host is a Debian bookworm root filesystem booted with ``/lib/systemd/systemd`` as
PID 1 inside new PID, mount, UTS, IPC, network and cgroup namespaces, with its own
address on a private bridge, reachable over real SSH. See ``/work/shared/notes/lab.md``
("Real systemd hosts without Docker") for the facts this builds on.

Layout (``workdir`` is given by the caller, e.g. a pytest ``tmp_path``)::

    workdir/credlab-state.json     what was created (read by cleanup_stale after a crash)
    workdir/id_ed25519[.pub]       the SSH key the controller logs in with
    workdir/hosts/NAME/root        the host's / as seen from outside (overlay mount)
    workdir/hosts/NAME/upper,work  overlay upper/work dirs (per-host changes)
    workdir/hosts/NAME/boot.sh     the script run as PID 1 before it execs systemd
    workdir/hosts/NAME/console.log stdout/stderr of unshare, the boot script and systemd

Requirements: root (CAP_SYS_ADMIN, CAP_NET_ADMIN), util-linux (unshare, nsenter, mount),
iproute2, openssh-client, debootstrap (only to build the cached rootfs), kernel support
for PID/mount/net/cgroup namespaces, veth and bridge links, overlayfs (else ``cp -a`` is
used), and a cgroup hierarchy the hosts' systemd can own a subtree of (a cgroup v1
``name=systemd`` hierarchy at /sys/fs/cgroup/systemd, or cgroup v2).

Only one lab (bridge ``credlab0``, subnet 10.231.17.0/24 by default) can run at a time on
a machine; starting a second one while the first one's owner is alive raises.

CLI::

    python -m tests.lab.hosts rootfs            # build the cached rootfs if missing
    python -m tests.lab.hosts cleanup [DIR...]  # undo crashed runs (all registered if no DIR)
    python -m tests.lab.hosts bench --count 3   # boot N hosts, print timings, tear down
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOTFS_CACHE = Path(os.environ.get("CREDLAB_ROOTFS", "/var/cache/credops-lab/rootfs-bookworm"))
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
INCLUDE = "systemd,systemd-sysv,dbus,openssh-server,python3,iproute2,procps"
ROOTFS_BUILD_TIMEOUT = 900
# Files a usable rootfs must have (bookworm has merged /usr).
ROOTFS_REQUIRED = ("usr/lib/systemd/systemd", "usr/sbin/sshd", "usr/bin/python3",
                   "usr/sbin/ip", "usr/bin/ps", "usr/bin/dbus-daemon")

BRIDGE = "credlab0"
VETH_PREFIX = "clvh"
STATE_NAME = "credlab-state.json"
REGISTRY = Path(os.environ.get("CREDLAB_REGISTRY", "/run/credops-lab"))
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_ENV = {"PATH": HOST_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb",
            "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "USER": "root", "LOGNAME": "root"}

# Capabilities the hosts' systemd does not get: they act on the whole machine, not on the
# host's namespaces (loading modules, setting the clock, raw I/O, kernel log, accounting).
DROPPED_CAPS = ("sys_module", "sys_time", "sys_rawio", "syslog", "sys_pacct",
                "wake_alarm", "block_suspend", "mac_admin", "mac_override")

# Units that hang, fail or make no sense in a container; masked in each host's own layer.
MASKED_UNITS = (
    "getty.target", "getty@tty1.service", "console-getty.service", "serial-getty@.service",
    "container-getty@.service", "getty-static.service",
    "systemd-udevd.service", "systemd-udevd-control.socket", "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service", "systemd-udev-settle.service", "systemd-hwdb-update.service",
    "systemd-networkd-wait-online.service", "systemd-remount-fs.service",
    "systemd-sysctl.service", "systemd-modules-load.service", "kmod-static-nodes.service",
    "systemd-pstore.service", "systemd-journald-audit.socket", "systemd-binfmt.service",
    "systemd-firstboot.service", "systemd-rfkill.service", "systemd-rfkill.socket",
    "systemd-fsckd.socket", "systemd-fsckd.service", "systemd-machine-id-commit.service",
    "sys-kernel-config.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
    "sys-fs-fuse-connections.mount", "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount", "dev-hugepages.mount",
    "e2scrub_reap.service", "e2scrub_all.timer", "fstrim.timer", "apt-daily.timer",
    "apt-daily-upgrade.timer", "dpkg-db-backup.timer",
)

BOOT_SCRIPT = r"""#!/bin/sh
# credlab boot script: runs as PID 1 of the new namespaces, prepares the root, execs systemd.
set -eu
R="$1"; NAME="$2"; GO="$3"; CGMODE="$4"
mount --make-rprivate /
mount --bind "$R" "$R"
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
# /proc/sys read-only except the host's own network sysctls; no sysrq from the host.
mount --bind "$R/proc/sys" "$R/proc/sys"
mount --bind "$R/proc/sys/net" "$R/proc/sys/net"
mount -o remount,bind,ro "$R/proc/sys"
if [ -e "$R/proc/sysrq-trigger" ]; then
    mount --bind "$R/proc/sysrq-trigger" "$R/proc/sysrq-trigger"
    mount -o remount,bind,ro "$R/proc/sysrq-trigger"
fi
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
if [ "$CGMODE" = v1 ]; then
    mount -t tmpfs -o nosuid,nodev,noexec,mode=755 tmpfs "$R/sys/fs/cgroup"
    mkdir "$R/sys/fs/cgroup/systemd"
    mount -t cgroup -o nosuid,nodev,noexec,none,name=systemd cgroup "$R/sys/fs/cgroup/systemd"
else
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup"
fi
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs "$R/run"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$R/tmp"
# A private /dev: a few character devices bound from outside, its own devpts and shm.
mount -t tmpfs -o nosuid,mode=755 tmpfs "$R/dev"
for d in null zero full random urandom tty; do
    touch "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"
done
touch "$R/dev/console"; mount --bind /dev/null "$R/dev/console"
mkdir -m 755 "$R/dev/pts"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mkdir -m 1777 "$R/dev/shm"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
hostname "$NAME"
# Wait (bounded) until the controller has wired the network, so systemd boots with it.
i=0
while [ ! -e "$GO" ]; do
    i=$((i + 1))
    if [ "$i" -gt 600 ]; then echo "credlab: no go signal for $NAME" >&2; exit 1; fi
    sleep 0.05
done
cd "$R"
pivot_root . .
umount -l .
cd /
exec /usr/bin/env -i container=other PATH=%(path)s /lib/systemd/systemd --system
""" % {"path": HOST_PATH}


# --------------------------------------------------------------------------- helpers

def _log(msg):
    print(f"[credlab] {msg}", file=sys.stderr, flush=True)


def _tool(name):
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not path:
        raise RuntimeError(f"credlab: required tool {name!r} not found (install util-linux/iproute2/openssh-client)")
    return path


def _run(cmd, *, input=None, timeout=30, check=True, env=None):
    """Run cmd in its own process group; kill the whole group on timeout. Bytes in/out."""
    proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, env=env)
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            out, err = b"", b""
        raise subprocess.TimeoutExpired(proc.args, timeout, output=out, stderr=err) from None
    cp = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, out, err)
    return cp


def _text(cp):
    return subprocess.CompletedProcess(cp.args, cp.returncode,
                                       (cp.stdout or b"").decode("utf-8", "replace"),
                                       (cp.stderr or b"").decode("utf-8", "replace"))


def _quiet(cmd, timeout=15):
    """Run a teardown command; never raises; returns True on success."""
    try:
        return _run(cmd, timeout=timeout, check=False).returncode == 0
    except Exception:  # noqa: BLE001 - teardown must go on
        return False


def _proc_start(pid):
    """Start time (clock ticks since boot) of pid, or None if it does not exist."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, OSError):
        return None
    fields = data[data.rindex(")") + 2:].split()
    return int(fields[19])


def _proc_state(pid):
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()[0]


def _alive(pid, start=None):
    """pid exists, is not a zombie, and (if given) started at `start`."""
    if not pid:
        return False
    st = _proc_start(pid)
    if st is None or (start is not None and st != start):
        return False
    return _proc_state(pid) not in (None, "Z", "X")


def _children(pid):
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(p) for p in text.split()]
    except OSError:
        pass
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                data = (d / "stat").read_text()
            except OSError:
                continue
            if int(data[data.rindex(")") + 2:].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def _unescape_mount(s):
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _mounts_under(path):
    """Mount points in our mount namespace at or under `path`, deepest first."""
    path = os.path.realpath(str(path))
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        mp = _unescape_mount(line.split()[4])
        if mp == path or mp.startswith(path.rstrip("/") + "/"):
            found.append(mp)
    return sorted(set(found), key=len, reverse=True)


def _link_exists(name):
    return Path(f"/sys/class/net/{name}").exists()


def _links_with_prefix(prefix):
    try:
        return sorted(n for n in os.listdir("/sys/class/net") if n.startswith(prefix))
    except OSError:
        return []


@contextlib.contextmanager
def _flock(path, timeout=120):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    raise RuntimeError(f"credlab: could not lock {path} within {timeout}s") from exc
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


def _write_json_atomic(path, data):
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _write(path, content, mode=0o644):
    """Write a file in a host root from outside (replacing symlinks/whiteouts)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    data = content.encode() if isinstance(content, str) else content
    path.write_bytes(data)
    os.chmod(path, mode)


def _cgroup_hierarchies():
    """[(kind, dir)] for each mounted cgroup hierarchy: kind is "v2" or "v1:<controllers>",
    dir is this process's own cgroup in it (lab cgroups are made below it)."""
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _hid, ctrls, path = line.split(":", 2)
        own[ctrls] = path
    result, seen = [], set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _sep, post = line.partition(" - ")
        pf, qf = pre.split(), post.split()
        if len(qf) < 3 or qf[0] not in ("cgroup", "cgroup2"):
            continue
        root, mp = _unescape_mount(pf[3]), _unescape_mount(pf[4])
        if qf[0] == "cgroup2":
            key = ""
        else:
            opts = set(qf[2].split(","))
            key = next((k for k in own if k and set(k.split(",")) <= opts), None)
        if key is None or key in seen or key not in own:
            continue
        path = own[key]
        if ".." in path.split("/"):
            continue
        if root != "/":
            if not (path == root or path.startswith(root.rstrip("/") + "/")):
                continue
            path = path[len(root):]
        seen.add(key)
        result.append(("v2" if qf[0] == "cgroup2" else f"v1:{key}", Path(mp) / path.lstrip("/")))
    return result


def _cgroup_setup():
    """(mode, [dirs]): how the hosts' systemd sees cgroups ("v2": a cgroup2 hierarchy, or
    "v1": the name=systemd hierarchy, with systemd then mounting every v1 controller), and the
    hierarchies (our own cgroup in each) the hosts must be placed below, so that each host's
    systemd owns only its own subtree and teardown can remove it."""
    forced = os.environ.get("CREDLAB_CGROUP", "auto")
    hier = _cgroup_hierarchies()
    v2 = [d for k, d in hier if k == "v2"]
    v1sd = [d for k, d in hier if k == "v1:name=systemd"]
    if forced in ("auto", "v2") and v2:
        return "v2", v2[:1]
    if forced in ("auto", "v1") and v1sd:
        return "v1", [d for _k, d in hier]
    raise RuntimeError("credlab: no usable cgroup hierarchy (need cgroup2 mounted, or a v1 "
                       f"name=systemd hierarchy); found {hier}")


def _cgroup_mkdir(path):
    """mkdir a cgroup; a v1 cpuset cgroup needs cpus/mems before it can hold a process."""
    path = Path(path)
    path.mkdir(exist_ok=True)
    for knob in ("cpuset.cpus", "cpuset.mems"):
        f = path / knob
        if f.exists() and not f.read_text().strip():
            f.write_text((path.parent / knob).read_text())


def _cgroup_pids(cgdir):
    pids = set()
    cgdir = Path(cgdir)
    if not cgdir.is_dir():
        return pids
    for dirpath, _dirs, files in os.walk(cgdir):
        if "cgroup.procs" in files:
            try:
                pids.update(int(p) for p in Path(dirpath, "cgroup.procs").read_text().split())
            except OSError:
                pass
    return pids


def _cgroup_remove(cgdir):
    """rmdir a cgroup tree bottom-up (cgroup dirs cannot be removed with rmtree)."""
    cgdir = Path(cgdir)
    if not cgdir.is_dir():
        return True
    for dirpath, _dirs, _files in sorted(os.walk(cgdir), key=lambda t: len(t[0]), reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)
    return not cgdir.exists()


# --------------------------------------------------------------------------- rootfs

def rootfs_ok(path=ROOTFS_CACHE):
    path = Path(path)
    return path.is_dir() and all((path / f).exists() for f in ROOTFS_REQUIRED)


def ensure_rootfs(path=ROOTFS_CACHE, timeout=ROOTFS_BUILD_TIMEOUT):
    """Return the cached rootfs, building it with debootstrap first if it is missing.

    The build goes into a temp dir next to the cache and is renamed into place only when
    complete, so a crashed or timed-out build never leaves a half rootfs at `path`.
    """
    path = Path(path)
    if rootfs_ok(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with _flock(path.parent / f".{path.name}.lock", timeout=timeout + 60):
        if rootfs_ok(path):
            return path
        if path.exists():
            aside = path.with_name(f"{path.name}.broken-{int(time.time())}")
            _log(f"rootfs at {path} is incomplete; moving it aside to {aside}")
            os.rename(path, aside)
        debootstrap = _tool("debootstrap")
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        log = path.parent / f"{path.name}.build.log"
        cmd = [debootstrap, "--variant=minbase", f"--include={INCLUDE}", SUITE, str(tmp), MIRROR]
        _log(f"building rootfs (timeout {timeout}s): {shlex.join(cmd)}; log: {log}")
        t0 = time.monotonic()
        ok = False
        try:
            with open(log, "wb") as fh:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                        start_new_session=True)
                try:
                    rc = proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
                    raise RuntimeError(f"credlab: debootstrap timed out after {timeout}s (log {log})") from None
            if rc != 0:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"credlab: debootstrap failed with {rc} (log {log}):\n{tail}")
            if not rootfs_ok(tmp):
                missing = [f for f in ROOTFS_REQUIRED if not (tmp / f).exists()]
                raise RuntimeError(f"credlab: debootstrap result lacks {missing}")
            # Downloaded .debs are not needed by the hosts.
            for deb in (tmp / "var/cache/apt/archives").glob("*.deb"):
                deb.unlink()
            os.rename(tmp, path)
            ok = True
            _log(f"rootfs ready at {path} in {time.monotonic() - t0:.0f}s")
        finally:
            if not ok:
                for mp in _mounts_under(tmp):
                    _quiet(["umount", "-l", mp])
                if not _mounts_under(tmp):
                    shutil.rmtree(tmp, ignore_errors=True)
    return path


# --------------------------------------------------------------------------- hosts

class Host:
    """One booted host. `root` is its / from outside (files on tmpfs like /run are not there)."""

    def __init__(self, name, address, index, root, hostdir):
        self.name = name
        self.address = address
        self.index = index
        self.root = Path(root)
        self.dir = Path(hostdir)
        self.pid = 0              # systemd, PID 1 inside; pid as seen from outside
        self.pid_start = None
        self.unshare_pid = 0
        self.unshare_start = None
        self.veth = f"{VETH_PREFIX}{index}"
        self.popen = None

    def __repr__(self):
        return f"Host({self.name!r}, {self.address!r}, pid={self.pid})"

    def alive(self):
        return _alive(self.pid, self.pid_start)

    def run(self, *argv, check=True, timeout=30, input=None):
        """Run argv inside the host (all its namespaces, its root) via nsenter; text output.

        Runs as root with a clean environment (PATH of the host). `input` may be str or bytes.
        """
        if not self.pid:
            raise RuntimeError(f"{self.name} is not running")
        if isinstance(input, str):
            input = input.encode()
        cmd = [_tool("nsenter"), "-t", str(self.pid), "-a", "--", *[str(a) for a in argv]]
        try:
            cp = _run(cmd, input=input, timeout=timeout, check=False, env=dict(HOST_ENV))
        except subprocess.TimeoutExpired as exc:
            raise subprocess.TimeoutExpired(exc.cmd, exc.timeout,
                                            output=(exc.output or b"").decode("utf-8", "replace"),
                                            stderr=(exc.stderr or b"").decode("utf-8", "replace")) from None
        cp = _text(cp)
        if check and cp.returncode != 0:
            raise subprocess.CalledProcessError(cp.returncode, cp.args, cp.stdout, cp.stderr)
        return cp

    def put_file(self, path, content, mode=0o644, owner="root"):
        """Write a file inside the host (atomically, creating parent dirs), chmod + chown it."""
        data = content.encode() if isinstance(content, str) else bytes(content)
        owner = owner if ":" in owner else f"{owner}:"
        script = ('set -e; d=$(dirname "$1"); mkdir -p "$d"; t="$1.credlab-tmp.$$"; '
                  'cat > "$t"; chmod "$2" "$t"; chown "$3" "$t"; mv -f "$t" "$1"')
        self.run("/bin/sh", "-c", script, "sh", path, format(mode, "o"), owner, input=data)

    def read_file(self, path):
        return self.run("cat", "--", path).stdout

    def systemctl(self, *args, check=True):
        return self.run("systemctl", "--no-pager", *args, check=check)

    def journal(self, unit=None, lines=100):
        """Tail of the host's journal (all, or of one unit), for debugging."""
        args = ["journalctl", "--no-pager", "-n", str(lines)]
        if unit:
            args += ["-u", unit]
        return self.run(*args, check=False).stdout


class SystemdHosts:
    """A set of booted systemd hosts on bridge credlab0; a context manager (start/stop)."""

    def __init__(self, workdir, count=2, prefix="host", subnet="10.231.17", rootfs=None,
                 boot_timeout=60, root_mode=None):
        if not 1 <= count <= 200:
            raise ValueError("count must be between 1 and 200")
        self.workdir = Path(workdir).resolve()
        self.count = count
        self.prefix = prefix
        self.subnet = subnet
        self.gateway = f"{subnet}.1"
        self.rootfs = Path(rootfs) if rootfs else ROOTFS_CACHE
        self.boot_timeout = boot_timeout
        self.ssh_key = self.workdir / "id_ed25519"
        self.state_file = self.workdir / STATE_NAME
        self.lab_id = hashlib.sha1(str(self.workdir).encode()).hexdigest()[:10]
        self.hosts = [Host(f"{prefix}{i}", f"{subnet}.{10 + i}", i,
                           self.workdir / "hosts" / f"{prefix}{i}" / "root",
                           self.workdir / "hosts" / f"{prefix}{i}")
                      for i in range(1, count + 1)]
        # How each host gets its root: "overlay" (default when it works) or "copy" (cp -a).
        self.root_mode = root_mode or os.environ.get("CREDLAB_ROOT_MODE", "auto")
        if self.root_mode not in ("auto", "overlay", "copy"):
            raise ValueError(f"root_mode must be auto, overlay or copy, not {self.root_mode!r}")
        self.mode = None if self.root_mode == "auto" else self.root_mode
        self.timings = {}
        self.teardown_warnings = []
        self._state = None

    # -- context manager
    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def __getitem__(self, key):
        return self.host(key)

    def host(self, key):
        if isinstance(key, Host):
            return key
        if isinstance(key, int):
            return self.hosts[key]
        for h in self.hosts:
            if key in (h.name, h.address):
                return h
        raise KeyError(key)

    # -- state
    def _save_state(self):
        st = self._state
        st["hosts"] = [{"name": h.name, "address": h.address, "dir": str(h.dir), "root": str(h.root),
                        "veth": h.veth, "pid": h.pid, "pid_start": h.pid_start,
                        "unshare_pid": h.unshare_pid, "unshare_start": h.unshare_start}
                       for h in self.hosts]
        _write_json_atomic(self.state_file, st)

    def _register(self):
        REGISTRY.mkdir(parents=True, exist_ok=True)
        (REGISTRY / "labs").mkdir(exist_ok=True)
        _write_json_atomic(REGISTRY / "labs" / f"{self.lab_id}.json", {"state_file": str(self.state_file)})

    # -- start
    def start(self):
        t0 = time.monotonic()
        try:
            self._start()
        except BaseException:
            diag = self._diagnostics()
            self.stop()
            if diag:
                _log("boot failed; diagnostics:\n" + diag)
            raise
        self.timings["total"] = time.monotonic() - t0
        return self

    def _wait_for_other_lab(self):
        """Another process's live lab owns the bridge: wait (bounded) until it is gone.

        One lab per machine; parallel test runs on one machine take turns instead of failing.
        CREDLAB_WAIT (seconds, default 480) bounds the wait."""
        deadline = time.monotonic() + float(os.environ.get("CREDLAB_WAIT", "480"))
        announced = False
        while True:
            try:
                with _flock(REGISTRY / "lock"):
                    cleanup_all_stale(exclude=self.state_file)
                return
            except RuntimeError as exc:
                own = "owner pid %d," % os.getpid()
                if "another lab is running" not in str(exc) or own in str(exc) or time.monotonic() > deadline:
                    raise
                if not announced:
                    _log(f"{exc}: waiting for it to finish")
                    announced = True
                time.sleep(2)

    def _start(self):
        if os.geteuid() != 0:
            raise RuntimeError("credlab: SystemdHosts needs root")
        t0 = time.monotonic()
        ensure_rootfs(self.rootfs)
        self.timings["rootfs"] = time.monotonic() - t0
        self.workdir.mkdir(parents=True, exist_ok=True)
        cg_mode, cg_bases = _cgroup_setup()
        self._wait_for_other_lab()
        with _flock(REGISTRY / "lock"):
            cleanup_all_stale(exclude=self.state_file)
            if self.state_file.exists():
                cleanup_stale(self.workdir)
            if _link_exists(BRIDGE):
                raise RuntimeError(f"credlab: link {BRIDGE} exists and belongs to a live lab")
            self._state = {"version": 1, "workdir": str(self.workdir), "owner_pid": os.getpid(),
                           "owner_start": _proc_start(os.getpid()), "bridge": BRIDGE, "bridge_created": False,
                           "cgroups": [str(b / f"credlab-{self.lab_id}") for b in cg_bases],
                           "cgroup_mode": cg_mode,
                           "mounts": [], "mode": None, "hosts": []}
            self._save_state()
            self._register()
            # Bridge on the controller side.
            _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
            self._state["bridge_created"] = True
            self._save_state()
            _run(["ip", "addr", "add", f"{self.gateway}/24", "dev", BRIDGE])
            _run(["ip", "link", "set", BRIDGE, "up"])
            # Nothing the hosts send is routed beyond the controller, even where the machine
            # forwards IPv4 (per-interface switch: packets received on the bridge).
            with contextlib.suppress(OSError):
                Path(f"/proc/sys/net/ipv4/conf/{BRIDGE}/forwarding").write_text("0\n")

        t1 = time.monotonic()
        self._make_key()
        for h in self.hosts:
            self._prepare_root(h)
            self._customize(h)
        self.timings["prepare"] = time.monotonic() - t1

        t2 = time.monotonic()
        cgs = [Path(c) for c in self._state["cgroups"]]
        for cg in cgs:
            _cgroup_mkdir(cg)
        for h in self.hosts:
            self._launch(h, cgs, cg_mode)
        for h in self.hosts:
            self._wire(h)
        self.timings["launch"] = time.monotonic() - t2
        t3 = time.monotonic()
        self._wait_booted()
        self.timings["boot"] = time.monotonic() - t3

    def _make_key(self):
        if not self.ssh_key.exists():
            _run([_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", f"credlab-{self.lab_id}",
                  "-f", str(self.ssh_key)])
        os.chmod(self.ssh_key, 0o600)

    def _prepare_root(self, h):
        if h.dir.exists():
            if _mounts_under(h.dir):
                raise RuntimeError(f"credlab: {h.dir} still has mounts")
            shutil.rmtree(h.dir)
        upper, work = h.dir / "upper", h.dir / "work"
        for d in (upper, work, h.root):
            d.mkdir(parents=True)
        if self.mode in (None, "overlay"):
            bad = any(c in str(p) for p in (self.rootfs, upper, work) for c in ",:")
            opts = f"lowerdir={self.rootfs},upperdir={upper},workdir={work}"
            if not bad and _run(["mount", "-t", "overlay", "overlay", "-o", opts, h.root],
                                check=False).returncode == 0:
                self.mode = "overlay"
                self._state["mounts"].append(str(h.root))
                self._state["mode"] = "overlay"
                self._save_state()
                return
            if self.mode == "overlay":
                raise RuntimeError(f"credlab: overlay mount for {h.name} failed")
            _log("overlayfs not usable here; copying the rootfs per host (slower)")
        self.mode = "copy"
        self._state["mode"] = "copy"
        self._save_state()
        _run(["cp", "-a", "--reflink=auto", f"{self.rootfs}/.", str(h.root)], timeout=600)

    def _customize(self, h):
        r = h.root
        etc = r / "etc"
        _write(etc / "hostname", f"{h.name}\n")
        hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
                 f"{self.gateway}\tcredlab-controller"]
        hosts += [f"{o.address}\t{o.name}" for o in self.hosts]
        _write(etc / "hosts", "\n".join(hosts) + "\n")
        _write(etc / "machine-id", secrets.token_hex(16) + "\n", 0o444)
        _write(etc / "resolv.conf", "# credlab host: no DNS\n")
        sysd = etc / "systemd" / "system"
        sysd.mkdir(parents=True, exist_ok=True)
        for unit in MASKED_UNITS:
            p = sysd / unit
            if p.is_symlink() or p.exists():
                p.unlink()
            os.symlink("/dev/null", p)
        _write(etc / "systemd" / "journald.conf.d" / "credlab.conf",
               "[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\nForwardToConsole=no\nForwardToWall=no\n")
        _write(etc / "systemd" / "system.conf.d" / "credlab.conf",
               "[Manager]\nDefaultTimeoutStartSec=30s\nDefaultTimeoutStopSec=10s\nShowStatus=no\n")
        # SSH: key-only root login, fresh host keys per host.
        ssh_dir = r / "root" / ".ssh"
        ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(ssh_dir, 0o700)
        pub = Path(str(self.ssh_key) + ".pub").read_text()
        _write(ssh_dir / "authorized_keys", pub, 0o600)
        _write(etc / "ssh" / "sshd_config.d" / "credlab.conf",
               "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n"
               "HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\n"
               "MaxStartups 50:30:100\nMaxSessions 50\n")
        for key in (etc / "ssh").glob("ssh_host_*"):
            key.unlink()
        for ktype in ("ed25519", "ecdsa"):
            _run([_tool("ssh-keygen"), "-q", "-t", ktype, "-N", "", "-C", f"root@{h.name}",
                  "-f", str(etc / "ssh" / f"ssh_host_{ktype}_key")])
        _write(h.dir / "boot.sh", BOOT_SCRIPT, 0o755)

    def _launch(self, h, cgs, cg_mode):
        procs = []
        for cg in cgs:
            _cgroup_mkdir(cg / h.name)
            procs.append(str(cg / h.name / "cgroup.procs"))
        if any(c.isspace() for p in procs for c in p):
            raise RuntimeError(f"credlab: cgroup paths with spaces are not supported: {procs}")
        go = h.dir / "go"
        with contextlib.suppress(FileNotFoundError):
            go.unlink()
        drop = ",".join(f"-{c}" for c in DROPPED_CAPS)
        # sh moves itself into the host's cgroups, then becomes unshare; --cgroup makes them
        # the roots of the host's cgroup namespace (so its systemd owns only that subtree).
        wrapper = 'for f in $0; do echo $$ > "$f" || exit 1; done; exec "$@"'
        cmd = ["/bin/sh", "-c", wrapper, " ".join(procs),
               _tool("unshare"), "--pid", "--mount", "--uts", "--ipc", "--net", "--cgroup",
               "--fork", "--kill-child", "--propagation", "private", "--",
               _tool("setpriv"), f"--bounding-set={drop}", "--",
               "/bin/sh", str(h.dir / "boot.sh"), str(h.root), h.name, str(go), cg_mode]
        with open(h.dir / "console.log", "ab") as log:
            h.popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True, close_fds=True)
        h.unshare_pid = h.popen.pid
        h.unshare_start = _proc_start(h.unshare_pid)
        self._save_state()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            kids = _children(h.unshare_pid) if _proc_state(h.unshare_pid) not in (None, "Z") else []
            # The wrapper sh execs unshare; the child only exists once unshare has forked.
            if kids and Path(f"/proc/{h.unshare_pid}/exe").resolve().name == "unshare":
                h.pid = kids[0]
                h.pid_start = _proc_start(h.pid)
                self._save_state()
                return
            if h.popen.poll() is not None:
                raise RuntimeError(f"credlab: {h.name}: unshare exited with {h.popen.returncode}:\n"
                                   + self._console(h))
            time.sleep(0.01)
        raise RuntimeError(f"credlab: {h.name}: unshare did not fork within 10s")

    def _wire(self, h):
        _run(["ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", str(h.pid)])
        _run(["ip", "link", "set", h.veth, "master", BRIDGE])
        _run(["ip", "link", "set", h.veth, "up"])
        batch = (f"link set lo up\naddr add {h.address}/24 dev eth0\nlink set eth0 up\n"
                 f"route add default via {self.gateway}\n").encode()
        _run([_tool("nsenter"), "-t", str(h.pid), "-n", "ip", "-batch", "-"], input=batch)
        (h.dir / "go").touch()

    def _wait_booted(self):
        deadline = time.monotonic() + self.boot_timeout
        pending = {h.name: h for h in self.hosts}
        ssh_pending = {}
        self.boot_states = {}
        while pending or ssh_pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"credlab: hosts not up within {self.boot_timeout}s: "
                                   f"systemd {sorted(pending)}, ssh {sorted(ssh_pending)}")
            for name, h in list(pending.items()):
                if not h.alive():
                    raise RuntimeError(f"credlab: {name}'s systemd died during boot:\n" + self._console(h))
                try:
                    state = h.run("systemctl", "is-system-running", check=False, timeout=5).stdout.strip()
                except subprocess.TimeoutExpired:
                    continue
                if state in ("running", "degraded"):
                    self.boot_states[name] = state
                    if state == "degraded":
                        failed = h.systemctl("--failed", "--plain", "--no-legend", check=False).stdout
                        _log(f"{name} is degraded; failed units:\n{failed}")
                    del pending[name]
                    ssh_pending[name] = h
            for name, h in list(ssh_pending.items()):
                try:
                    cp = self.ssh(h, "true", timeout=10, connect_timeout=3)
                except subprocess.TimeoutExpired:
                    continue
                if cp.returncode == 0:
                    del ssh_pending[name]
                    self.timings[f"up:{name}"] = self.boot_timeout - (deadline - time.monotonic())
            if pending or ssh_pending:
                time.sleep(0.2)

    def _console(self, h, limit=4000):
        try:
            return (h.dir / "console.log").read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def _diagnostics(self):
        out = []
        for h in self.hosts:
            if not h.pid:
                continue
            out.append(f"--- {h.name} console.log ---\n{self._console(h, 2000)}")
            if h.alive():
                with contextlib.suppress(Exception):
                    out.append(f"--- {h.name} failed units ---\n"
                               + h.systemctl("--failed", check=False, ).stdout)
                    out.append(f"--- {h.name} jobs ---\n" + h.systemctl("list-jobs", check=False).stdout)
                    out.append(f"--- {h.name} journal ---\n" + h.journal(lines=40))
        return "\n".join(out)

    # -- use
    def ssh(self, host, command, timeout=20, check=False, input=None, connect_timeout=5):
        """Run `command` (str, or a list that is shell-quoted) on host with the real ssh client."""
        h = self.host(host)
        if not isinstance(command, str):
            command = shlex.join(str(c) for c in command)
        cmd = [_tool("ssh"), "-F", "/dev/null", "-i", str(self.ssh_key), "-o", "IdentitiesOnly=yes",
               "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", f"ConnectTimeout={connect_timeout}", "-o", "LogLevel=ERROR",
               f"root@{h.address}", command]
        if isinstance(input, str):
            input = input.encode()
        cp = _text(_run(cmd, input=input, timeout=timeout, check=False))
        if check and cp.returncode != 0:
            raise subprocess.CalledProcessError(cp.returncode, cp.args, cp.stdout, cp.stderr)
        return cp

    def inventory_vars(self, host):
        h = self.host(host)
        return {
            "ansible_host": h.address,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.ssh_key),
            "ansible_ssh_common_args": ("-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                        "-o ConnectTimeout=5 -o IdentitiesOnly=yes"),
            "ansible_python_interpreter": "/usr/bin/python3",
        }

    def inventory(self, group="lab_hosts"):
        """A YAML/JSON-inventory-shaped dict with all hosts in `group`."""
        return {"all": {"children": {group: {"hosts": {h.name: self.inventory_vars(h) for h in self.hosts}}}}}

    # -- stop
    def stop(self):
        """Kill every host and remove what start() created. Idempotent; never raises."""
        state = self._state
        if state is None:
            try:
                state = json.loads(self.state_file.read_text())
            except (OSError, ValueError):
                state = None
        try:
            if state is not None:
                self._state = state
                with contextlib.suppress(Exception):
                    self._save_state()
                self.teardown_warnings = _teardown(state, popens=[h.popen for h in self.hosts if h.popen])
        except Exception as exc:  # noqa: BLE001
            self.teardown_warnings.append(f"teardown error: {exc!r}")
        for h in self.hosts:
            h.pid = 0
            h.popen = None
        self._state = None
        for w in self.teardown_warnings:
            _log(w)


def _kill(pid, start=None, sig=signal.SIGKILL):
    if _alive(pid, start):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _teardown(state, popens=()):
    """Undo everything recorded in `state`; returns a list of warnings; never raises."""
    warnings = []

    def step(what, fn, *args):
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - teardown must go on
            warnings.append(f"{what}: {exc!r}")

    hosts = state.get("hosts") or []
    cgs = list(state.get("cgroups") or [])
    # 1. Kill each host's init (the kernel then kills its whole pid namespace); its unshare
    #    then reaps it and exits by itself (killing unshare first would leave a zombie to
    #    the machine's init). Then anything still alive in the lab's cgroups, or unshare.
    for h in hosts:
        step("kill systemd", _kill, h.get("pid"), h.get("pid_start"))
    t0 = time.monotonic()
    while time.monotonic() < t0 + 15:
        for p in popens:
            with contextlib.suppress(Exception):
                p.poll()
        live = [h["pid"] for h in hosts if _alive(h.get("pid"), h.get("pid_start"))]
        unsh = [h["unshare_pid"] for h in hosts if _alive(h.get("unshare_pid"), h.get("unshare_start"))]
        # (unshare itself is in the hosts' cgroups too: spare it during the grace period)
        cg_live = [p for cg in cgs for p in _cgroup_pids(cg) if _alive(p) and p not in unsh]
        if not live and not unsh and not cg_live:
            break
        if time.monotonic() > t0 + 3:
            for h in hosts:
                _kill(h.get("unshare_pid"), h.get("unshare_start"))
        for p in live + cg_live:
            _kill(p)
        time.sleep(0.02)
    else:
        warnings.append("some lab processes did not die within 15s")
    # 2. Unmount the host roots (and anything else under the workdir).
    workdir = state.get("workdir")
    mps = list(state.get("mounts") or [])
    if workdir:
        mps += _mounts_under(workdir)
    for mp in sorted(set(mps), key=len, reverse=True):
        if not _mounts_under(mp):
            continue
        for _attempt in range(3):
            if _run(["umount", mp], check=False, timeout=20).returncode == 0 or not _mounts_under(mp):
                break
            time.sleep(0.2)
        else:
            _quiet(["umount", "-l", mp])
            if _mounts_under(mp):
                warnings.append(f"could not unmount {mp}")
    # 3. Links: veths (normally gone with their namespaces) and the bridge.
    for h in hosts:
        if h.get("veth") and _link_exists(h["veth"]):
            if not _quiet(["ip", "link", "del", h["veth"]]) and _link_exists(h["veth"]):
                warnings.append(f"could not delete link {h['veth']}")
    br = state.get("bridge")
    if br and state.get("bridge_created") and _link_exists(br):
        if not _quiet(["ip", "link", "del", br]) and _link_exists(br):
            warnings.append(f"could not delete bridge {br}")
    # 4. cgroups.
    for cg in cgs:
        for _attempt in range(20):
            if _cgroup_remove(cg):
                break
            time.sleep(0.1)
        else:
            warnings.append(f"could not remove cgroup {cg}")
    # 5. Per-host dirs, only if nothing is mounted below them any more.
    for h in hosts:
        d = h.get("dir")
        if d and Path(d).exists():
            if _mounts_under(d):
                warnings.append(f"not removing {d}: still has mounts")
            else:
                step(f"remove {d}", shutil.rmtree, d)
    if workdir:
        hostsdir = Path(workdir) / "hosts"
        with contextlib.suppress(OSError):
            hostsdir.rmdir()
        labid = hashlib.sha1(workdir.encode()).hexdigest()[:10]
        with contextlib.suppress(OSError):
            (REGISTRY / "labs" / f"{labid}.json").unlink()
        if not warnings:
            with contextlib.suppress(OSError):
                (Path(workdir) / STATE_NAME).unlink()
    return warnings


def live_labs():
    """The state of every live lab in the registry (its owner process still runs): dicts with
    ``owner_pid``, ``workdir``, ``hosts``, ... (what SystemdHosts saves in its state file)."""
    found = []
    labs = REGISTRY / "labs"
    for entry in sorted(labs.glob("*.json")) if labs.is_dir() else []:
        try:
            state = json.loads(Path(json.loads(entry.read_text())["state_file"]).read_text())
        except (OSError, ValueError, KeyError):
            continue
        if _alive(state.get("owner_pid"), state.get("owner_start")):
            found.append(state)
    return found


def cleanup_stale(state_dir):
    """Undo what a previous (crashed) run left, as recorded in state_dir/credlab-state.json.

    Kills its processes (checking pid start times so a reused pid is never hit), unmounts,
    deletes its links, cgroups and per-host dirs. Returns a list of warnings; never raises.
    """
    state_file = Path(state_dir) / STATE_NAME
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return []
    return _teardown(state)


def cleanup_crashed():
    """cleanup_all_stale under the registry lock, for a person at the command line: every lab
    whose owner died (the demo, demo-more, a test run, a lab daemon) is undone, a live lab is
    left alone and named. Returns warnings; never raises."""
    try:
        with _flock(REGISTRY / "lock"):
            return cleanup_all_stale()
    except RuntimeError as exc:  # a live lab owns the bridge (the crashed ones were undone), or the lock
        _log(f"{exc}: left alone")
        return []


def _stray_host_mounts(keep_workdir=None):
    """Overlay mounts that look like host roots of a lab (WORKDIR/hosts/NAME/root)."""
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        pre, _sep, post = line.partition(" - ")
        qf = post.split()
        mp = Path(_unescape_mount(pre.split()[4]))
        if len(qf) < 3 or qf[0] != "overlay" or "lowerdir=" not in qf[2]:
            continue
        if mp.name == "root" and mp.parent.parent.name == "hosts" and \
                f"upperdir={mp.parent / 'upper'}" in qf[2].split(","):
            if keep_workdir and str(mp).startswith(str(keep_workdir).rstrip("/") + "/"):
                continue
            found.append(str(mp))
    return found


def cleanup_all_stale(exclude=None):
    """cleanup_stale for every registered lab whose owner process is gone, then remove stray
    credlab links/cgroups that no live lab owns. Raises if a live lab owns the bridge."""
    warnings = []
    live_owner = None
    labs = REGISTRY / "labs"
    entries = sorted(labs.glob("*.json")) if labs.is_dir() else []
    for entry in entries:
        try:
            sf = Path(json.loads(entry.read_text())["state_file"])
        except (OSError, ValueError, KeyError):
            entry.unlink(missing_ok=True)
            continue
        if exclude and sf == Path(exclude):
            continue
        try:
            state = json.loads(sf.read_text())
        except (OSError, ValueError):
            entry.unlink(missing_ok=True)
            continue
        if _alive(state.get("owner_pid"), state.get("owner_start")):
            live_owner = state
            continue
        _log(f"cleaning up stale lab in {sf.parent}")
        warnings += _teardown(state)
        entry.unlink(missing_ok=True)
    if live_owner is not None:
        raise RuntimeError(f"credlab: another lab is running (owner pid {live_owner.get('owner_pid')}, "
                           f"workdir {live_owner.get('workdir')}); only one can use {BRIDGE} at a time")
    # Strays without a state file (e.g. the workdir was deleted after a crash): processes in
    # lab cgroups, then links, host-root mounts, and the cgroups themselves.
    keep = None
    if exclude:
        keep = f"credlab-{hashlib.sha1(str(Path(exclude).parent).encode()).hexdigest()[:10]}"
    try:
        bases = [d for _k, d in _cgroup_hierarchies()]
    except OSError:
        bases = []
    for base in bases:
        for cg in base.glob("credlab-*"):
            if cg.name == keep or not cg.is_dir():
                continue
            _log(f"removing stray cgroup {cg}")
            for _attempt in range(50):
                pids = [p for p in _cgroup_pids(cg) if _alive(p)]
                if not pids:
                    break
                for p in pids:
                    _kill(p)
                time.sleep(0.1)
            for _attempt in range(20):
                if _cgroup_remove(cg):
                    break
                time.sleep(0.1)
    for name in _links_with_prefix(VETH_PREFIX) + ([BRIDGE] if _link_exists(BRIDGE) else []):
        _log(f"removing stray link {name}")
        _quiet(["ip", "link", "del", name])
    for mp in _stray_host_mounts(Path(exclude).parent if exclude else None):
        _log(f"unmounting stray host root {mp}")
        if not _quiet(["umount", mp]):
            _quiet(["umount", "-l", mp])
    return warnings


# --------------------------------------------------------------------------- CLI

def _main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.lab.hosts", description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("rootfs", help="build the cached rootfs if missing")
    p.add_argument("--path", default=str(ROOTFS_CACHE))
    p.add_argument("--timeout", type=int, default=ROOTFS_BUILD_TIMEOUT)
    p = sub.add_parser("cleanup", help="undo crashed runs")
    p.add_argument("state_dirs", nargs="*")
    p = sub.add_parser("bench", help="boot N hosts, print timings, tear down")
    p.add_argument("--count", type=int, default=2)
    p.add_argument("--workdir")
    args = ap.parse_args(argv)
    if args.cmd == "rootfs":
        print(ensure_rootfs(Path(args.path), timeout=args.timeout))
        return 0
    if args.cmd == "cleanup":
        warnings = []
        for d in args.state_dirs:
            warnings += cleanup_stale(Path(d))
        if not args.state_dirs:
            warnings += cleanup_crashed()
        for w in warnings:
            print(w, file=sys.stderr)
        return 1 if warnings else 0
    if args.cmd == "bench":
        ensure_rootfs()
        wd = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="credlab-bench-"))
        lab = SystemdHosts(wd, count=args.count)
        t0 = time.monotonic()
        lab.start()
        try:
            up = time.monotonic() - t0
            print(f"{args.count} host(s) up in {up:.2f}s (mode {lab.mode}); timings: "
                  + ", ".join(f"{k}={v:.2f}" for k, v in lab.timings.items()))
            for h in lab.hosts:
                print(f"  {h.name} {h.address} pid={h.pid} state={lab.boot_states.get(h.name)}")
        finally:
            t1 = time.monotonic()
            lab.stop()
        print(f"teardown {time.monotonic() - t1:.2f}s; warnings: {lab.teardown_warnings or 'none'}")
        if not args.workdir:
            shutil.rmtree(wd, ignore_errors=True)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(_main())
