"""`make demo-more` (`python -m tests.lab demo-more`) end to end, as a user runs it: a subprocess
that starts its own lab, rotates a TLS certificate, a database password (alternating roles) and
an AWS access key with rotate.yml, prints the evidence it read with independent clients, and
tears the lab down. This test checks the exit code and that the printed evidence says what it
must (new serial, old serial on the CRL, the other role in use, the old IAM key gone, no secret
value in the audit trail or the playbook output), and that nothing of the lab is left behind.

Why it runs before the session's shared lab: only one lab can hold the hosts' bridge on a
machine, and the session fixture `rotation_lab` keeps its hosts until the session ends, so a
demo started after it would wait (CREDLAB_WAIT, 480 s) for this very process and then fail.
tests/conftest.py orders this module right after the lab's self-tests (test_lab_*), whose
hosts are gone by then, and before any test that asks for rotation_lab. Should the order ever
be changed (a plugin, `-p`), the test fails at once instead of waiting: it checks the lab
registry for a lab this pytest process owns. A lab of ANOTHER process (a parallel run on the
same machine) is waited for, as every lab start does; that wait is added to the timeout.
"""
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.hosts import STATE_NAME, live_labs

ROOT = Path(__file__).resolve().parents[2]
WORKDIR = ROOT / ".lab" / "demo-more"
DEMO_TIMEOUT = 400                                          # the demo itself (about 70 s when idle)
LAB_WAIT = float(os.environ.get("CREDLAB_WAIT", "480"))     # plus a wait for another process's lab

pytestmark = [pytest.mark.lab, pytest.mark.hosts, pytest.mark.timeout(DEMO_TIMEOUT + LAB_WAIT + 180)]


def _run_demo():
    proc = subprocess.Popen([sys.executable, "-m", "tests.lab", "demo-more"], cwd=str(ROOT),
                            env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, errors="replace")
    try:
        out = proc.communicate(timeout=DEMO_TIMEOUT + LAB_WAIT)[0]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)           # the demo tears its lab down on SIGTERM
        try:
            out = proc.communicate(timeout=120)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0]
        pytest.fail("demo-more did not finish within %ds:\n%s" % (DEMO_TIMEOUT + LAB_WAIT, out[-6000:]))
    return proc.returncode, re.sub(r"\x1b\[[0-9;]*m", "", out)


def _section(out, start, end):
    return out.split(start, 1)[1].split(end, 1)[0]


def test_demo_more(request):
    held = [lab.get("workdir") for lab in live_labs() if lab.get("owner_pid") == os.getpid() and lab.get("hosts")]
    if held:
        pytest.fail("this pytest process already holds a lab (%s): the demo's own lab would wait for it until "
                    "CREDLAB_WAIT runs out. tests/conftest.py must run %s before any test using rotation_lab."
                    % (", ".join(held), request.node.nodeid))
    rc, out = _run_demo()
    assert rc == 0, out[-8000:]
    assert "[FAIL]" not in out and "Traceback" not in out, out[-8000:]
    assert "runs: 3 of 3 succeeded; checks failed: 0; secret values found: 0" in out

    # 1. the certificate: the serial each host presents changed, the old one is on the CRL
    cert = _section(out, "== 1/3 Certificate", "== 2/3 Database")
    before = _section(cert, "Before:", "$ ansible-playbook")
    after = _section(cert, "== 1/3 After", "Seen during the run")
    old = set(re.findall(r"web\d  https://\S+  serial (\S+)", before))
    new = set(re.findall(r"web\d  https://\S+  serial (\S+)", after))
    assert len(old) == 1 and len(new) == 1 and old != new, cert
    assert "[ok]   the old serial %s is on the CRL" % old.pop() in cert
    assert "[ok]   the new serial is not on the CRL" in cert

    # 2. the database password: the other role is in use, logs in, the consumers are healthy
    db = _section(out, "== 2/3 Database", "== 3/3 AWS")
    assert "orders_app_a=LOGIN, orders_app_b=NOLOGIN" in _section(db, "Before:", "$ ansible-playbook")
    assert "orders_app_a=NOLOGIN, orders_app_b=LOGIN" in _section(db, "== 2/3 After", "The consumers'")
    assert "[ok]   psycopg login as orders_app_b with the new password: current_user=orders_app_b" in db
    assert "[ok]   psycopg login as orders_app_a with the old password: refused" in db
    assert len(re.findall(r"\[ok\]   web\d GET \S+/health/database -> 200 .*'user': 'orders_app_b'", db)) == 2

    # 3. AWS: a new key, the old one gone from IAM, the labels moved, the consumers healthy
    aws = _section(out, "== 3/3 AWS", "== Audit trail")
    (old_id,) = re.findall(r"IAM list-access-keys: \{'(AKIA\w+)': 'Active'\}", _section(aws, "Before", "$ ansible"))
    (new_id,) = re.findall(r"IAM list-access-keys: \{'(AKIA\w+)': 'Active'\}", _section(aws, "== 3/3 After", "STS"))
    assert new_id != old_id
    assert "[ok]   the old key %s is gone from IAM" % old_id in aws
    assert "AWSCURRENT=v-new, AWSPREVIOUS=v-old" in aws
    assert len(re.findall(r"\[ok\]   web\d GET \S+/health/aws -> 200 ", aws)) == 2

    # the audit trail has each credential's revocation of its old value; no secret anywhere
    trail = _section(out, "== Audit trail", "== Secret values")
    assert re.search(r"integration-service-account +revoked +%s" % old_id, trail)
    assert re.search(r"orders-db +revoked +orders_app_a", trail)
    assert "found in the audit trail: 0" in out
    assert re.search(r"found in the playbook output \(3 runs, \d+ lines\): 0", out)
    assert "PRIVATE KEY" not in out

    # torn down: nothing left of the demo's hosts
    assert "== Lab torn down" in out
    assert not (WORKDIR / "hosts" / STATE_NAME).exists()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert [line for line in ps.splitlines() if str(WORKDIR) in line] == []
