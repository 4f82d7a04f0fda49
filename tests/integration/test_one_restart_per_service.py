"""Several credentials of one run that reach the same service on the same host: the host's
environment file is written once, the service restarted once, then each consumer verified; the
roll back likewise. Restarts are counted from the host's own journal (systemd's "Started" lines
of the unit), the values read back with ssh, hvac and the provider's API."""
import re
import zlib

import hvac
import pytest

from tests.lab import scenarios
from tests.lab.ansible_runner import run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.hosts]

SERVICE = "multi-app"
ENV_FILE = "/etc/multi/environment"
PORT = 8090
VARS = ("KEY_ALPHA", "KEY_BRAVO", "KEY_CHARLIE")


def _starts(host):
    """How many times systemd started the unit so far (its journal, not the collection)."""
    out = host.run("journalctl", "--no-pager", "-o", "cat", "-u", SERVICE + ".service", check=False).stdout
    return sum(1 for line in out.splitlines() if line.startswith("Started ") and "(%s)" % SERVICE in line)


def _record(lab, name, var):
    record = scenarios.api_key_record(lab, name)
    record["consumers"] = [{
        "name": SERVICE, "kind": "systemd", "hosts": "web", "env_file": ENV_FILE, "env_var": var,
        "service": SERVICE + ".service",
        "verify": {"url": "http://{{ ansible_host }}:%d/health/env/%s" % (PORT, var), "status": 200}}]
    return record


@pytest.fixture
def three(rotation_lab, request):
    """Three credentials, all held by one service on each host, in one environment file."""
    lab = rotation_lab
    # the test's name, cut short, and a number of its whole name (parametrized variants differ there)
    tag = "%s-%03d" % (re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[5:26].strip("-"),
                       zlib.crc32(request.node.name.encode()) % 1000)
    names = ["multi-%s-%d" % (tag, i) for i in range(3)]
    client = hvac.Client(url=lab.openbao.addr, token=lab.openbao.token)
    old = {}
    for name in names:
        key_id, secret = lab.provider.create_key("initial-" + name)
        client.secrets.kv.v2.create_or_update_secret(path="api-credentials/" + name, mount_point=scenarios.KV_MOUNT,
                                                     secret={"api_key": secret, "key_id": key_id})
        old[name] = (key_id, secret)
    for host in lab.hosts:
        lab.install_consumer(host, old[names[0]][1], name=SERVICE, env_file=ENV_FILE, env_var=VARS[0], port=PORT,
                             extra_env=["LOG_LEVEL=info"] + ["%s=%s" % (var, old[n][1]) for var, n in zip(VARS[1:], names[1:])])
    credentials = {name: _record(lab, name, var) for name, var in zip(names, VARS)}
    inventory = lab.write_inventory(path=lab.workdir / ("inv-%s.yml" % tag), credentials=credentials,
                                    groups={"web": [h.name for h in lab.hosts]})
    yield lab, names, old, inventory
    for host in lab.hosts:
        host.systemctl("stop", SERVICE + ".service", check=False)


def _env(host):
    return dict(line.split("=", 1) for line in host.read_file(ENV_FILE).splitlines() if "=" in line)


# By default the three are issued and finished side by side, each by its own worker host; --limit
# keeps hosts added during the run out of the plays, so there (and with rotation_side_by_side=false)
# they go one after the other on localhost. All three ways end the same. The hosts' step goes as one
# program on stdin where the connection pipelines (the deploy role's default), else as the module
# (one-by-one runs without pipelining); -vvv shows which, and must show no value either.
@pytest.mark.parametrize("how", ["side-by-side", "limit", "one-by-one"])
def test_three_credentials_one_restart_per_host(three, how):
    lab, names, old, inventory = three
    before = {h.name: _starts(h) for h in lab.hosts}
    extra = {"credentials": names}
    if how == "one-by-one":
        extra.update(rotation_side_by_side=False, ansible_pipelining=False)
    proc = run_playbook("playbooks/rotate.yml", inventory=inventory, env=lab.env(), verbosity=3,
                        extra_vars=extra, timeout=600, limit="localhost,web" if how == "limit" else None)
    assert proc.returncode == 0, proc.stdout[-6000:]
    workers = set(re.findall(r"\[(credops-credential\.[^\]]+)\]", proc.stdout))
    assert workers == ({"credops-credential." + n for n in names} if how == "side-by-side" else set())
    # the program runs as `PYTHON -` (or the fallback loop's `exec "$p" -`); a pipelined module as
    # `PYTHON && sleep 0`, a module without pipelining as a PUT of its AnsiballZ file
    ssh = [line for line in proc.stdout.splitlines() if "SSH: EXEC" in line]
    program = [line for line in ssh if re.search(r"(python[0-9.]* -|exec \"\$p\" -)[ ;&]", line)]
    pipelined = [line for line in ssh if re.search(r"python[0-9.]* && sleep 0", line)]
    module_sent = re.findall(r"PUT .*AnsiballZ_systemd_consumer\.py", proc.stdout)
    assert (len(program), len(pipelined), len(module_sent)) == (
        (0, 0, len(lab.hosts)) if how == "one-by-one" else (len(lab.hosts), 0, 0)), proc.stdout[-6000:]
    for host in lab.hosts:
        assert _starts(host) - before[host.name] == 1, host.journal(SERVICE + ".service")
        env = _env(host)
        for name, var in zip(names, VARS):
            data, meta = scenarios.kv_read(lab, name)
            assert meta["custom_metadata"]["rotation_phase"] == "finished"
            assert env[var] == data["api_key"] != old[name][1]
            assert lab.provider.test_key(data["api_key"]) == 200
            assert lab.provider.test_key(old[name][1]) == 401
        assert env["LOG_LEVEL"] == "info"
    for name in names:
        assert sum(1 for e in lab.audit_entries() if e["credential"] == name and e["event"] == "verified"
                   and e.get("consumer")) == 2
    for name in names:
        for _key_id, secret in [old[name], (None, scenarios.kv_read(lab, name)[0]["api_key"])]:
            assert secret not in proc.stdout + proc.stderr


def test_rollback_of_three_restarts_once(three):
    lab, names, old, inventory = three
    good, broken = lab.hosts[0], lab.hosts[1]
    # the second host's service does not come back after its restart: all three roll back
    broken.put_file("/etc/systemd/system/%s.service.d/broken.conf" % SERVICE, "[Service]\nExecStartPre=/bin/false\n")
    broken.systemctl("daemon-reload")
    before = _starts(good)
    try:
        proc = run_playbook("playbooks/rotate.yml", inventory=inventory, env=lab.env(),
                            extra_vars={"credentials": names, "deploy_service_timeout": 5}, timeout=600)
    finally:
        broken.run("rm", "-f", "/etc/systemd/system/%s.service.d/broken.conf" % SERVICE)
        broken.systemctl("daemon-reload")
    assert proc.returncode != 0
    for name in names:
        assert "Rolled back" in proc.stdout and name in proc.stdout
        data, meta = scenarios.kv_read(lab, name)
        assert meta["custom_metadata"]["rotation_phase"] == "rolled_back"
        assert data["api_key"] == old[name][1]
    # the good host: once with the new values, once with the previous ones, not 3 + 3 times
    assert _starts(good) - before == 2, good.journal(SERVICE + ".service")
    env = _env(good)
    for name, var in zip(names, VARS):
        assert env[var] == old[name][1]
        assert lab.provider.test_key(old[name][1]) == 200


def test_a_consumer_that_fails_its_verification_is_recorded_and_rolled_back(three):
    """One credential's check fails on the second host only: that consumer is recorded failed (result
    and audit trail) by the one deploy task, the credential is rolled back on both hosts (store and
    files), and the other two finish."""
    lab, names, old, inventory = three
    first, second = lab.hosts[0], lab.hosts[1]
    credentials = {name: _record(lab, name, var) for name, var in zip(names, VARS)}
    # on the second host the check asks for a variable the service does not have: 503 whatever the value
    credentials[names[1]]["consumers"][0]["verify"]["url"] = (
        "http://{{ ansible_host }}:%d/health/env/{{ 'NO_SUCH_VAR' if inventory_hostname == '%s' else '%s' }}"
        % (PORT, second.name, VARS[1]))
    inventory = lab.write_inventory(path=lab.workdir / "inv-verify-fails.yml", credentials=credentials,
                                    groups={"web": [h.name for h in lab.hosts]})
    before = _starts(first)
    proc = run_playbook("playbooks/rotate.yml", inventory=inventory, env=lab.env(),
                        extra_vars={"credentials": names, "rotation_verify_deadline": 2}, timeout=600)
    assert proc.returncode != 0, proc.stdout[-6000:]
    assert "Rolled back" in proc.stdout and names[1] in proc.stdout
    data, meta = scenarios.kv_read(lab, names[1])
    assert meta["custom_metadata"]["rotation_phase"] == "rolled_back" and data["api_key"] == old[names[1]][1]
    for name in (names[0], names[2]):
        assert scenarios.kv_read(lab, name)[1]["custom_metadata"]["rotation_phase"] == "finished"
    entries = [e for e in lab.audit_entries() if e["credential"] == names[1] and e.get("consumer")]
    failed = [e for e in entries if e["event"] == "failed" and e["consumer"] == "%s@%s" % (SERVICE, second.name)]
    assert failed and failed[0]["details"]["step"] == "Verify | the consumer works with the value (%s, new)" % SERVICE
    assert "consumer '%s@%s'" % (SERVICE, second.name) in failed[0]["details"]["error"]
    assert "expected status 200, got 503" in failed[0]["details"]["error"]
    assert failed[0]["key_id"] and failed[0]["key_id"] != old[names[1]][0]
    assert [e["event"] for e in entries if e["consumer"] == "%s@%s" % (SERVICE, first.name)] == [
        "deployed", "verified", "deployed", "rolled_back"]
    # the first host: once with the new values, once more for the roll back of the one credential
    assert _starts(first) - before == 2, first.journal(SERVICE + ".service")
    env = _env(first)
    assert env[VARS[1]] == old[names[1]][1]
    for name, var in ((names[0], VARS[0]), (names[2], VARS[2])):
        assert env[var] == scenarios.kv_read(lab, name)[0]["api_key"] != old[name][1]
    for name in names:
        for secret in (old[name][1], scenarios.kv_read(lab, name)[0]["api_key"]):
            assert secret not in proc.stdout + proc.stderr
            assert secret not in (lab.workdir / "rotation-audit.jsonl").read_text()
