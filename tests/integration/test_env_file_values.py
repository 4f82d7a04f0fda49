"""Values with any byte a provider may return (quotes, $, spaces, #, backslash, backtick) reach a
systemd service exactly through its EnvironmentFile=, end to end (rotate.yml, a generated
value, a real systemd host, read back by the service itself); a value no environment file
can carry (a newline) is refused before anything changes."""
import time

import hvac
import pytest

from tests.lab.ansible_runner import run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.hosts]

# every character systemd's parser or a shell could take for syntax, around the random part
TRICKY = "q\"u'o$te #h\\a`b {x} ${HOME} sp "
DUMP = """import os, time
value = os.environb.get(b"TRICKY_VALUE")
with open("/run/tricky-value.hex", "w") as out:
    out.write("missing" if value is None else value.hex())
time.sleep(100000)
"""
UNIT = """[Unit]
Description=prints the value it got from its EnvironmentFile
[Service]
EnvironmentFile=/etc/tricky/environment
ExecStart=/usr/bin/python3 /usr/local/bin/tricky-dump.py
"""


def _record(lab, name, prefix, host):
    return {
        "type": "api_key", "rotation_contact": "team@example.org",
        "issuer": {"kind": "generated", "length": 48, "alphabet": "ab$\"' #\\`", "prefix": prefix},
        "store": {"kind": "vault_kv2", "url": lab.openbao.addr, "mount": "secret", "path": "tricky/" + name,
                  "field": "value"},
        "consumers": [{"name": "tricky-app", "kind": "systemd", "hosts": host.name, "service": "tricky.service",
                       "env_file": "/etc/tricky/environment", "env_var": "TRICKY_VALUE"}],
    }


@pytest.fixture
def tricky(rotation_lab):
    lab = rotation_lab
    host = lab.hosts[0]
    host.put_file("/usr/local/bin/tricky-dump.py", DUMP, mode=0o755)
    host.put_file("/etc/tricky/environment", "OTHER=kept\nTRICKY_VALUE=before\n", mode=0o600)
    host.put_file("/etc/systemd/system/tricky.service", UNIT)
    host.systemctl("daemon-reload")
    host.systemctl("restart", "tricky.service")
    yield lab, host
    host.systemctl("stop", "tricky.service", check=False)


def _run(lab, host, name, prefix):
    record = _record(lab, name, prefix, host)
    inventory = lab.write_inventory(path=lab.workdir / ("inv-%s.yml" % name), credentials={name: record},
                                    groups={"web": [host.name]})
    return run_playbook("playbooks/rotate.yml", inventory=inventory, env=lab.env(),
                        extra_vars={"credentials": [name], "force": True}, timeout=600)


def _service_value(host, deadline=15):
    end = time.monotonic() + deadline
    while True:
        text = host.run("cat", "/run/tricky-value.hex", check=False).stdout.strip()
        if text and text != "missing" or time.monotonic() > end:
            return text
        time.sleep(0.2)


def test_a_value_with_shell_and_systemd_syntax_reaches_the_service_exactly(tricky):
    lab, host = tricky
    proc = _run(lab, host, "tricky-bytes", TRICKY)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    stored = hvac.Client(url=lab.openbao.addr, token=lab.openbao.token).secrets.kv.v2.read_secret_version(
        path="tricky/tricky-bytes", mount_point="secret", raise_on_deleted_version=True)["data"]["data"]["value"]
    assert stored.startswith(TRICKY) and len(stored) == len(TRICKY) + 48
    assert stored not in output
    assert _service_value(host) == stored.encode().hex()   # what systemd handed the process, byte for byte
    lines = host.read_file("/etc/tricky/environment").splitlines()
    assert lines[0] == "OTHER=kept" and lines[1].startswith('TRICKY_VALUE="') and len(lines) == 2
    assert host.run("stat", "-c", "%a", "/etc/tricky/environment").stdout.strip() == "600"


def test_a_value_no_environment_file_can_carry_is_refused_before_anything_changes(tricky):
    lab, host = tricky
    before = host.read_file("/etc/tricky/environment")
    proc = _run(lab, host, "tricky-newline", "line-one\nline-two-")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "tricky-newline" in output and "contains a newline" in output
    # a generated value has nothing to revoke at an issuer (unit tests cover the revocation)
    assert "the new value was dropped, nothing was stored or deployed" in output
    assert "line-two-" not in output
    client = hvac.Client(url=lab.openbao.addr, token=lab.openbao.token)
    with pytest.raises(hvac.exceptions.InvalidPath):  # nothing stored
        client.secrets.kv.v2.read_secret_version(path="tricky/tricky-newline", mount_point="secret",
                                                 raise_on_deleted_version=True)
    assert host.read_file("/etc/tricky/environment") == before
