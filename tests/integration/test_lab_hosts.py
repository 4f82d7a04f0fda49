"""The lab's real systemd hosts (tests/lab/hosts.py): boot, SSH, services, teardown.

Needs root, namespaces, veth/bridge links and the cached Debian rootfs (built on first use).
Only one lab can run on a machine at a time, so the shared lab of this module is stopped by
test_stop_leaves_nothing_behind before the crash tests start labs of their own.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from tests.lab.hosts import BRIDGE, STATE_NAME, VETH_PREFIX, SystemdHosts, cleanup_stale

ROOT = Path(__file__).resolve().parents[2]

if os.geteuid() != 0:
    pytest.skip("systemd lab hosts need root", allow_module_level=True)


def _no_proxy_open(url, timeout):
    # Never through a proxy: traffic goes only to the lab's own addresses.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as resp:
        return resp.status, resp.read().decode()


def _snapshot(lab):
    """What to look for after teardown: pids, netns inodes, cgroup dirs of the lab."""
    state = json.loads((lab.workdir / STATE_NAME).read_text())
    return {
        "pids": [(h.pid, h.unshare_pid) for h in lab.hosts],
        "netns": {os.readlink(f"/proc/{h.pid}/ns/net") for h in lab.hosts},
        "mntns": {os.readlink(f"/proc/{h.pid}/ns/mnt") for h in lab.hosts},
        "cgroups": state["cgroups"],
    }


def _assert_nothing_left(workdir, snap=None, links=True):
    workdir = str(Path(workdir).resolve())
    # Processes: nothing whose command line names the workdir (unshare, boot script) ...
    ps = subprocess.run(["ps", "-eo", "pid,stat,args"], capture_output=True, text=True, check=True).stdout
    left = [line for line in ps.splitlines() if workdir in line]
    assert not left, "processes left behind:\n" + "\n".join(left)
    if snap:
        # ... and none of the hosts' systemd/unshare pids, not even as zombies.
        for pid, upid in snap["pids"]:
            for p in (pid, upid):
                assert not Path(f"/proc/{p}").exists(), f"pid {p} still there"
        # Namespaces: no process anywhere is in a host's net or mount namespace.
        users = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                if os.readlink(d / "ns/net") in snap["netns"] or os.readlink(d / "ns/mnt") in snap["mntns"]:
                    users.append(d.name)
            except OSError:
                continue
        assert not users, f"processes still in a host namespace: {users}"
        for cg in snap["cgroups"]:
            assert not Path(cg).exists(), f"cgroup {cg} left behind"
    # Links (skipped while another lab legitimately owns them).
    if links:
        out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
        names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
        assert not [n for n in names if n.startswith(VETH_PREFIX) or n == BRIDGE], names
    # Mounts (our mount namespace), via findmnt and /proc/self/mountinfo.
    fm = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True, check=False).stdout
    assert not [m for m in fm.splitlines() if m.startswith(workdir)], fm
    mi = Path("/proc/self/mountinfo").read_text()
    assert workdir not in mi
    # Per-host dirs and the state file.
    assert not (Path(workdir) / "hosts").exists()
    assert not (Path(workdir) / STATE_NAME).exists()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = SystemdHosts(tmp_path_factory.mktemp("lab"), count=2)
    t0 = time.monotonic()
    lab.start()
    print(f"2 hosts up in {time.monotonic() - t0:.2f}s ({lab.mode}): {lab.timings}")
    try:
        yield lab
    finally:
        lab.stop()


@pytest.mark.hosts
def test_hosts_reach_running_state(lab):
    assert len(lab.hosts) == 2
    for h in lab.hosts:
        state = h.systemctl("is-system-running", check=False).stdout.strip()
        assert state in ("running", "degraded"), (h.name, state, h.systemctl("--failed", check=False).stdout)
        assert h.run("cat", "/proc/1/comm").stdout.strip() == "systemd"
        assert h.alive()
        # systemd is PID 1 inside; h.pid is that process seen from outside.
        assert Path(f"/proc/{h.pid}/comm").read_text().strip() == "systemd"
        assert h.run("ps", "-o", "args=", "-p", "1").stdout.strip() == "/lib/systemd/systemd --system"


@pytest.mark.hosts
def test_real_ssh_on_own_address(lab):
    for h in lab.hosts:
        cp = lab.ssh(h, 'hostname; echo "$SSH_CONNECTION"; ip -4 -o addr show dev eth0')
        assert cp.returncode == 0, cp.stderr
        name, conn, addr = cp.stdout.splitlines()[:3]
        assert name == h.name
        client, _cport, server, sport = conn.split()
        assert (client, server, sport) == (lab.gateway, h.address, "22")
        assert f"{h.address}/24" in addr
        # A list is shell-quoted; failures come back as a return code.
        assert lab.ssh(h.name, ["sh", "-c", "exit 3"]).returncode == 3


@pytest.mark.hosts
def test_hosts_are_distinct(lab):
    h1, h2 = lab.hosts
    assert h1.run("hostname").stdout.strip() == "host1"
    assert h2.run("hostname").stdout.strip() == "host2"
    assert (h1.address, h2.address) == ("10.231.17.11", "10.231.17.12")
    assert h1.read_file("/etc/machine-id") != h2.read_file("/etc/machine-id")
    assert h1.pid != h2.pid
    assert os.readlink(f"/proc/{h1.pid}/ns/net") != os.readlink(f"/proc/{h2.pid}/ns/net")
    # A file written in one host is not in the other, nor in the shared cached rootfs.
    h1.put_file("/etc/credlab-only-on-host1", "x\n")
    assert h2.run("test", "-e", "/etc/credlab-only-on-host1", check=False).returncode == 1
    assert not (lab.rootfs / "etc/credlab-only-on-host1").exists()
    # The hosts reach each other over the bridge.
    cp = lab.ssh(h2, "python3 -c \"import socket; socket.create_connection(('10.231.17.11', 22), 3).close()\"")
    assert cp.returncode == 0, cp.stderr


@pytest.mark.hosts
def test_file_helpers(lab):
    h = lab.hosts[0]
    h.put_file("/opt/credlab/secret.txt", "s3cret\n", mode=0o600)
    assert h.read_file("/opt/credlab/secret.txt") == "s3cret\n"
    out = h.run("stat", "-c", "%a %U %G", "/opt/credlab/secret.txt").stdout.split()
    assert out == ["600", "root", "root"]
    # Visible from outside under h.root (the host's overlay / copy).
    assert (h.root / "opt/credlab/secret.txt").read_text() == "s3cret\n"
    h.put_file("/tmp/owned-by-nobody", b"\x00\x01", mode=0o640, owner="nobody")
    assert h.run("stat", "-c", "%a %U", "/tmp/owned-by-nobody").stdout.split() == ["640", "nobody"]
    with pytest.raises(subprocess.CalledProcessError):
        h.read_file("/does/not/exist")
    assert h.run("false", check=False).returncode == 1


@pytest.mark.hosts
def test_transient_http_service_reachable_from_controller(lab):
    port = 8765
    for h in lab.hosts:
        h.put_file("/srv/www/index.html", f"hello from {h.name}\n")
        h.run("systemd-run", "--unit=credlab-http", "--property=WorkingDirectory=/srv/www",
              "/usr/bin/python3", "-m", "http.server", str(port), "--bind", h.address)
    for h in lab.hosts:
        url = f"http://{h.address}:{port}/index.html"
        body, last = None, None
        for _attempt in range(50):  # bounded: 50 tries, about 10 s
            try:
                status, body = _no_proxy_open(url, timeout=2)
                assert status == 200
                break
            except OSError as exc:
                last = exc
                time.sleep(0.2)
        assert body == f"hello from {h.name}\n", (last, h.journal("credlab-http"))
        assert h.systemctl("is-active", "credlab-http").stdout.strip() == "active"
        # journald works: the request log of the service is in its journal.
        journal = ""
        for _attempt in range(25):
            journal = h.run("journalctl", "--no-pager", "-u", "credlab-http").stdout
            if "GET /index.html" in journal:
                break
            time.sleep(0.2)
        assert "GET /index.html" in journal, journal
        h.systemctl("stop", "credlab-http")
        assert h.systemctl("is-active", "credlab-http", check=False).stdout.strip() in ("inactive", "failed")


@pytest.mark.hosts
def test_inventory_vars(lab):
    h = lab.hosts[1]
    v = lab.inventory_vars(h)
    assert v["ansible_host"] == h.address
    assert v["ansible_user"] == "root"
    assert Path(v["ansible_ssh_private_key_file"]) == lab.ssh_key and lab.ssh_key.exists()
    for opt in ("StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "ConnectTimeout=5"):
        assert f"-o {opt}" in v["ansible_ssh_common_args"]
    assert v["ansible_python_interpreter"] == "/usr/bin/python3"
    authorized = h.read_file("/root/.ssh/authorized_keys")
    assert Path(str(lab.ssh_key) + ".pub").read_text().strip() in authorized
    assert lab.inventory()["all"]["children"]["lab_hosts"]["hosts"]["host2"] == v


@pytest.mark.hosts
def test_stop_leaves_nothing_behind(lab):
    # A service with children in the host, so there is something to kill.
    lab.hosts[0].run("systemd-run", "--unit=credlab-sleeper", "sh", "-c", "sleep 600 & sleep 600")
    snap = _snapshot(lab)
    t0 = time.monotonic()
    lab.stop()
    print(f"teardown {time.monotonic() - t0:.2f}s")
    assert lab.teardown_warnings == []
    _assert_nothing_left(lab.workdir, snap)
    lab.stop()  # idempotent
    _assert_nothing_left(lab.workdir, snap)


CRASHER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from tests.lab.hosts import SystemdHosts
    lab = SystemdHosts(Path(sys.argv[1]), count=2).start()
    lab.hosts[0].run("systemd-run", "--unit=sleeper", "sleep", "600")
    print("UP", " ".join(str(h.pid) for h in lab.hosts), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def _crash_a_lab(workdir):
    cp = subprocess.run([sys.executable, "-c", CRASHER, str(workdir)], cwd=ROOT, capture_output=True,
                        text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert cp.returncode == -signal.SIGKILL, cp.stderr
    pids = [int(p) for p in cp.stdout.split()[1:]]
    assert all(Path(f"/proc/{p}").exists() for p in pids)  # the hosts outlived their owner
    return pids


@pytest.mark.hosts
def test_cleanup_stale_after_crash(tmp_path):
    workdir = tmp_path / "crashed"
    _crash_a_lab(workdir)
    state = json.loads((workdir / STATE_NAME).read_text())
    assert len(state["hosts"]) == 2 and (state["mounts"] or state["mode"] == "copy")
    assert cleanup_stale(workdir) == []
    _assert_nothing_left(workdir)
    for h in state["hosts"]:
        assert not Path(f"/proc/{h['pid']}").exists() or Path(f"/proc/{h['pid']}/stat").read_text().split()[2] == "Z"
    assert cleanup_stale(workdir) == []  # nothing left to do; no state file


@pytest.mark.hosts
def test_new_lab_cleans_up_a_crashed_one(tmp_path):
    _crash_a_lab(tmp_path / "crashed")
    with SystemdHosts(tmp_path / "next", count=1) as lab:
        assert lab.ssh(lab.hosts[0], "true").returncode == 0
        _assert_nothing_left(tmp_path / "crashed", links=False)
        # Only the new lab's links exist.
        assert sorted(n for n in os.listdir("/sys/class/net") if n.startswith((VETH_PREFIX, BRIDGE))) == \
            sorted([BRIDGE, f"{VETH_PREFIX}1"])
    _assert_nothing_left(tmp_path / "next")


@pytest.mark.hosts
def test_lab_down_undoes_every_crashed_lab(tmp_path):
    """`python -m tests.lab down` (no --dir), what the README gives a person after a crash: the
    crashed lab's hosts, links and mounts are gone, wherever its workdir was."""
    workdir = tmp_path / "crashed-elsewhere"
    pids = _crash_a_lab(workdir)
    cp = subprocess.run([sys.executable, "-m", "tests.lab", "down"], cwd=ROOT, capture_output=True, text=True,
                        timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert cp.returncode == 0, cp.stderr
    assert "cleaning up stale lab in %s" % workdir in cp.stderr
    _assert_nothing_left(workdir)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
