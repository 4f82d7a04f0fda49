"""`molecule test -s systemd_rotation` (extensions/molecule/systemd_rotation) end to end, as
`make molecule` runs it: create starts the lab daemon (`python -m tests.lab up`), prepare seeds
an API key and its consumers, converge runs credops.rotation.rotate with force, idempotence runs
it again without force (nothing may change), verify checks with independent clients, destroy
stops the lab (`python -m tests.lab down`). This test checks molecule's exit code and steps, that
no secret value reached the output, and that nothing of the lab is left behind.

Why it runs before the session's shared lab: only one lab can hold the hosts' bridge on a
machine, and the session fixture `rotation_lab` keeps its hosts until the session ends, so the
molecule lab started after it would wait (CREDLAB_WAIT, 480 s) for this very pytest process and
then fail. tests/conftest.py orders this module after the lab's self-tests and the demo test,
whose labs are gone by then, and before any test that asks for rotation_lab; the daemon's lab is
always stopped before this test returns. Should the order ever be broken (a plugin, `-p`), the
test fails at once instead of waiting: it checks the lab registry for a lab this pytest process
owns. A lab of ANOTHER process (a parallel run on the same machine) is waited for, as every lab
start does; that wait is added to the timeout.
"""
import hashlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.ansible_runner import ansible_env
from tests.lab.hosts import BRIDGE, REGISTRY, STATE_NAME, VETH_PREFIX, _cgroup_hierarchies, live_labs
from tests.lab.openbao import OpenBao
from tests.lab.provider import Provider

ROOT = Path(__file__).resolve().parents[2]
MOLECULE = Path(sys.executable).parent / "molecule"
SCENARIO = "systemd_rotation"
RUN_TIMEOUT = 420                                           # the scenario itself: about 2 min when idle
LAB_WAIT = float(os.environ.get("CREDLAB_WAIT", "480"))     # plus a wait for another process's lab
STEPS = ("destroy", "syntax", "create", "prepare", "converge", "idempotence", "verify")
# Every key the demo provider issues starts with sk_live_; the lab's tokens are fixed.
NEVER_PRINTED = ("sk_live_", OpenBao.token, Provider.admin_token)

pytestmark = [pytest.mark.lab, pytest.mark.hosts, pytest.mark.timeout(RUN_TIMEOUT + LAB_WAIT + 240)]

if os.geteuid() != 0:
    pytest.skip("the lab's systemd hosts need root", allow_module_level=True)


def _processes_using(path):
    """Processes whose command line, working directory or open files are under path."""
    path = str(path)
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            refs = [cmdline, os.readlink(proc / "cwd")]
            for fd in (proc / "fd").iterdir():
                try:
                    refs.append(os.readlink(fd))
                except OSError:
                    pass
        except OSError:
            continue
        if any(path in ref for ref in refs):
            found.append("%s %s" % (proc.name, cmdline[:200]))
    return found


def _mounts_under(path):
    text = Path("/proc/self/mountinfo").read_text()
    return [line.split()[4] for line in text.splitlines() if line.split()[4].startswith(str(path))]


def _down(lab_dir):
    return subprocess.run([sys.executable, "-m", "tests.lab", "down", "--dir", str(lab_dir)], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=240, check=False)


def test_molecule_systemd_rotation(tmp_path):
    own = [lab.get("workdir") for lab in live_labs() if lab.get("owner_pid") == os.getpid()]
    assert not own, ("this pytest process already holds a lab (%s): the molecule lab would wait for it; "
                     "tests/conftest.py must order test_molecule.py before rotation_lab" % own)
    ephemeral = tmp_path / "molecule"
    lab_dir = ephemeral / "lab"            # credops_lab_dir in molecule.yml
    env = ansible_env({"MOLECULE_EPHEMERAL_DIRECTORY": str(ephemeral), "NO_COLOR": "1",
                       "PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen([str(MOLECULE), "test", "-s", SCENARIO], cwd=str(ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, errors="replace", start_new_session=True)
    try:
        out = proc.communicate(timeout=RUN_TIMEOUT + LAB_WAIT)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out = proc.communicate(timeout=60)[0]
        pytest.fail("molecule test did not finish within %ss:\n%s" % (RUN_TIMEOUT + LAB_WAIT, out[-6000:]))
    finally:
        # Whatever happened, the lab must not outlive this test: it would hold the hosts'
        # bridge, and every later lab of this session would wait for it in vain.
        down = _down(lab_dir)
    out = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert proc.returncode == 0, out[-8000:]
    assert down.returncode == 0, down.stdout + down.stderr
    assert "no lab running" in down.stdout, "destroy.yml did not stop the lab:\n" + down.stdout

    # Every step ran and succeeded; converge rotated, the idempotence run changed nothing.
    for step in STEPS:     # "[systemd_rotation > verify] Executed: Successful" (or ➜ on a terminal)
        assert re.search(r"%s\W+%s\W+Executed: Successful" % (SCENARIO, step), out), step
    assert "Rotated: payment-gateway-api." in out
    assert "Rotated: nothing." in out
    assert "Nothing to rotate: no credential is due" in out
    for value in NEVER_PRINTED:
        assert value not in out

    # Nothing left behind: processes, mounts, the lab's registry entry, cgroups, links.
    assert not (lab_dir / "lab.json").exists()
    assert not (lab_dir / "hosts" / STATE_NAME).exists()
    assert _processes_using(tmp_path) == []
    assert _mounts_under(tmp_path) == []
    hosts_dir = str(lab_dir / "hosts")
    labid = hashlib.sha1(hosts_dir.encode()).hexdigest()[:10]
    assert not (REGISTRY / "labs" / ("%s.json" % labid)).exists()
    assert not [d for _kind, base in _cgroup_hierarchies() for d in base.glob("credlab-%s" % labid)]
    if not live_labs():        # the bridge and veths are shared names: only when no other lab runs
        links = os.listdir("/sys/class/net")
        assert BRIDGE not in links
        assert not [name for name in links if name.startswith(VETH_PREFIX)]
