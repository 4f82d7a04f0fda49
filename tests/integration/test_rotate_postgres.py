"""Database passwords end to end through the same playbooks: issuer postgres against the lab's
real PostgreSQL, store OpenBao KV v2, a real consumer on both systemd hosts that logs in to the
database with what its environment file holds (through a relay on the hosts' gateway). Checked
with independent clients: psql, hvac, the hosts' files and the consumers' own logins.

- the single-role procedure: issuing changes the role's password at once; a rollback puts the
  previous password back at the database BEFORE any consumer gets it back;
- the alternating-roles procedure (zero downtime): the idle role gets the new password and the
  consumers move to it (user name through id_env_var); the old role becomes idle; the revoke
  guard sees a session the dependency map does not know.
"""
import re
import secrets
import threading

import hvac
import psycopg
import pytest

from tests.lab import scenarios_more as more
from tests.lab.ansible_runner import run_playbook
from tests.lab.scenarios import KV_MOUNT

pytestmark = [pytest.mark.lab, pytest.mark.hosts]


@pytest.fixture(scope="module", autouse=True)
def _relay_stopped(rotation_lab):
    yield
    relay = getattr(rotation_lab, "_db_relay", None)
    if relay is not None:
        relay.stop()
        rotation_lab._db_relay = None


@pytest.fixture
def db(rotation_lab, postgres, request):
    lab = rotation_lab
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[8:36].strip("_")
    (lab.workdir / "rotation-audit.jsonl").unlink(missing_ok=True)
    return type("DbScenario", (), dict(lab=lab, pg=postgres, slug=slug, name="db-" + slug.replace("_", "-"),
                                       env=dict(lab.env(), PGPASSWORD=postgres.admin_password)))


def _inventory(sc, record):
    return sc.lab.write_inventory(path=sc.lab.workdir / ("inv-%s.yml" % sc.name), credentials={sc.name: record},
                                  groups={"web": [h.name for h in sc.lab.hosts]})


def _rotate(sc, inventory, extra=None, **kwargs):
    extra_vars = {"credentials": [sc.name]}
    extra_vars.update(extra or {})
    return run_playbook("playbooks/rotate.yml", inventory=inventory, extra_vars=extra_vars, env=sc.env, timeout=600,
                        **kwargs)


def _env_lines(host):
    return host.read_file(more.DB_ENV_FILE).splitlines()


def _health(host):
    return more.service_url(host, more.DB_PORT, "/health/database")


def _events(lab, name):
    return [e for e in lab.audit_entries() if e["credential"] == name]


def _kv_version(lab, name, version):
    client = hvac.Client(url=lab.openbao.addr, token=lab.openbao.token)
    return client.secrets.kv.v2.read_secret_version(path="db/" + name, mount_point=KV_MOUNT, version=version,
                                                    raise_on_deleted_version=True)["data"]["data"]


def _kv_passwords(lab, name):
    """Every password the credential's KV history ever held (current and previous, all versions)."""
    client = hvac.Client(url=lab.openbao.addr, token=lab.openbao.token)
    last = client.secrets.kv.v2.read_secret_metadata(path="db/" + name, mount_point=KV_MOUNT)["data"]["current_version"]
    found = set()
    for version in range(1, last + 1):
        data = _kv_version(lab, name, version)
        found.update(data[k] for k in ("password", "previous_password") if data.get(k))
    return found


def _refused(pg, role, password):
    res = pg.psql("select 1", user=role, password=password)
    return res.returncode != 0 and ("password authentication failed" in res.stderr
                                    or "is not permitted to log in" in res.stderr)


def _break(host):
    dropin = "/etc/systemd/system/%s.service.d/broken.conf" % more.DB_SERVICE
    host.put_file(dropin, "[Service]\nExecStartPre=/bin/false\n")
    host.systemctl("daemon-reload")
    return dropin


def _repair(host, dropin):
    host.run("rm", "-f", dropin)
    host.systemctl("daemon-reload")
    host.systemctl("restart", more.DB_SERVICE + ".service", check=False)


def _assert_no_secret(texts, *values):
    for text in texts:
        for value in values:
            assert value not in text


def test_db_single_role_rotation_end_to_end(db):
    sc, lab, pg = db, db.lab, db.pg
    role, old_pw = "app_" + sc.slug, "Old-" + secrets.token_urlsafe(24)
    more.seed_db_role(lab, pg, sc.name, role, old_pw)
    inventory = _inventory(sc, more.db_record(lab, pg, sc.name, role=role))

    proc = _rotate(sc, inventory, verbosity=3)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-3000:]
    data, meta = more.db_kv_read(lab, sc.name)
    new_pw = data["password"]
    assert new_pw != old_pw and re.match(r"^%s@\d{8}T\d{6}\.\d{6}Z$" % role, data["key_id"])
    assert "previous_password" not in data and "previous_key_id" not in data
    assert meta["custom_metadata"]["rotation_phase"] == "finished"
    # the database: the new password logs in, the old one no longer does
    assert more.can_log_in(pg, role, new_pw)
    assert _refused(pg, role, old_pw)
    assert pg.psql("insert into %s_orders values (1)" % role, user=role, password=new_pw).returncode == 0
    # every host: only DB_PASSWORD changed, mode 0600; the service logs in with it
    for host in lab.hosts:
        assert host.run("stat", "-c", "%a", more.DB_ENV_FILE).stdout.strip() == "600"
        assert _env_lines(host) == ["LOG_LEVEL=info", "DB_PASSWORD=" + new_pw]
        assert more.http_status(_health(host)) == 200 and more.http_json(_health(host))["user"] == role
    events = _events(lab, sc.name)
    names = [e["event"] for e in events]
    assert names.index("issued") < names.index("stored") < names.index("deployed") < names.index("finished")
    assert names.count("verified") == len(lab.hosts) + 1  # each consumer, then the credential (issuer login)
    assert next(e for e in events if e["event"] == "finished")["previous_key_id"] == role + "@seed"
    _assert_no_secret([proc.stdout, proc.stderr, (lab.workdir / "rotation-audit.jsonl").read_text()],
                      old_pw, new_pw, pg.admin_password, lab.openbao.token)

    # a re-run has nothing due: the password stays, nothing is written
    version = meta["current_version"]
    proc = run_playbook("playbooks/rotate.yml", inventory=inventory, env=sc.env)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Nothing to rotate" in proc.stdout
    assert more.db_kv_read(lab, sc.name)[1]["current_version"] == version
    assert more.can_log_in(pg, role, new_pw)


def test_db_single_role_rollback_restores_the_database_first(db):
    sc, lab, pg = db, db.lab, db.pg
    role, old_pw = "app_" + sc.slug, "Old-" + secrets.token_urlsafe(24)
    more.seed_db_role(lab, pg, sc.name, role, old_pw)
    inventory = _inventory(sc, more.db_record(lab, pg, sc.name, role=role))
    broken = lab.hosts[1]
    dropin = _break(broken)
    try:
        proc = _rotate(sc, inventory, extra={"rotation_verify_deadline": 5})
    finally:
        _repair(broken, dropin)
    assert proc.returncode != 0
    assert "Rolled back: %s" % sc.name in proc.stdout, proc.stdout[-6000:]
    data, meta = more.db_kv_read(lab, sc.name)
    assert data["password"] == old_pw and data["key_id"] == role + "@seed"
    assert meta["custom_metadata"]["rotation_phase"] == "rolled_back"
    new_pw = _kv_version(lab, sc.name, 2)["password"]  # what the rotation had issued
    assert new_pw != old_pw
    # the database has the previous password again; the new one is dead
    assert more.can_log_in(pg, role, old_pw)
    assert _refused(pg, role, new_pw)
    for host in lab.hosts:
        assert _env_lines(host) == ["LOG_LEVEL=info", "DB_PASSWORD=" + old_pw]
        assert more.http_status(_health(host)) == 200
    events = _events(lab, sc.name)
    steps = [(e["event"], e.get("consumer"), (e.get("details") or {}).get("step")) for e in events]
    restored_at_db = next(i for i, s in enumerate(steps) if s[0] == "revoked")
    store_back = steps.index(("rolled_back", None, "store"))
    # the healthy host got the old password back and verified it by a real login: only possible
    # because the database had it again before (the order this test is about)
    host_back = next(i for i, s in enumerate(steps) if s[:2] == ("rolled_back", "orders-app@" + lab.hosts[0].name))
    assert restored_at_db < store_back < host_back, steps
    assert events[restored_at_db]["details"]["restored_previous"] in (True, "True", "true")
    assert "finished" not in [s[0] for s in steps]
    _assert_no_secret([proc.stdout, proc.stderr, (lab.workdir / "rotation-audit.jsonl").read_text()],
                      old_pw, new_pw, pg.admin_password)


def test_db_alternating_roles(db):
    """Zero downtime: the idle role gets the new password, the consumers move to it (DB_USER
    through id_env_var), the old role becomes idle; a session the dependency map does not know
    holds the revocation back; a failed second rotation rolls back to the role in use."""
    sc, lab, pg = db, db.lab, db.pg
    role_a, role_b = "app_a_" + sc.slug[:20], "app_b_" + sc.slug[:20]
    old_pw = "Old-" + secrets.token_urlsafe(24)
    more.seed_db_alternating(lab, pg, sc.name, (role_a, role_b), old_pw)
    inventory = _inventory(sc, more.db_record(lab, pg, sc.name, roles=[role_a, role_b]))
    assert not more.role_can_login(pg, role_b)

    # the consumers' own view, all along: their login never fails (a restart may refuse a connection)
    seen, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            for host in lab.hosts:
                seen.append(more.http_status(_health(host), deadline=0))
            stop.wait(0.2)
    watcher = threading.Thread(target=watch, daemon=True)
    # an application nobody listed still works as role_a
    stray = psycopg.connect(pg.dsn(user=role_a, password=old_pw), application_name="forgotten-report-job")
    watcher.start()
    try:
        proc = _rotate(sc, inventory)
    finally:
        stop.set()
        watcher.join(10)
    outputs = [proc.stdout, proc.stderr]
    assert 503 not in seen and seen.count(200) > 0, seen
    # the new role is live everywhere, the old one is kept: its session is still in use
    assert proc.returncode != 0
    assert "was used" in proc.stdout and "forgotten-report-job" in proc.stdout, proc.stdout[-6000:]
    data, meta = more.db_kv_read(lab, sc.name)
    new_pw = data["password"]
    assert data["key_id"] == role_b and data["previous_key_id"] == role_a
    assert meta["custom_metadata"]["rotation_phase"] == "verified"
    assert more.can_log_in(pg, role_b, new_pw) and more.can_log_in(pg, role_a, old_pw)
    for host in lab.hosts:
        assert _env_lines(host) == ["LOG_LEVEL=info", "DB_PASSWORD=" + new_pw, "DB_USER=" + role_b]
        assert more.http_json(_health(host)) == {"database": "connected", "user": role_b}

    # the operator decides: force the revocation; the stray session is ended with it
    proc = _rotate(sc, inventory, extra={"force_revoke": True})
    outputs += [proc.stdout, proc.stderr]
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert "resuming from verified" in proc.stdout
    with pytest.raises(psycopg.OperationalError):
        stray.execute("select 1")
    stray.close()
    data, meta = more.db_kv_read(lab, sc.name)
    assert data["key_id"] == role_b and "previous_password" not in data
    assert meta["custom_metadata"]["rotation_phase"] == "finished"
    assert not more.role_can_login(pg, role_a) and _refused(pg, role_a, old_pw)
    assert more.can_log_in(pg, role_b, new_pw)
    revoked = [e for e in _events(lab, sc.name) if e["event"] == "revoked"]
    assert [e["key_id"] for e in revoked] == [role_a] and revoked[0]["details"]["forced"] in (True, "True", "true")

    # nothing due now
    proc = run_playbook("playbooks/rotate.yml", inventory=inventory, env=sc.env)
    outputs += [proc.stdout, proc.stderr, (lab.workdir / "rotation-audit.jsonl").read_text()]
    assert proc.returncode == 0 and "Nothing to rotate" in proc.stdout, proc.stdout[-3000:]

    # a second rotation issues role_a again; a consumer fails: back to role_b, role_a idle again
    (lab.workdir / "rotation-audit.jsonl").unlink(missing_ok=True)
    broken = lab.hosts[1]
    dropin = _break(broken)
    try:
        proc = _rotate(sc, inventory, extra={"rotation_verify_deadline": 5}, verbosity=0)
    finally:
        _repair(broken, dropin)
    assert proc.returncode != 0 and "Rolled back: %s" % sc.name in proc.stdout, proc.stdout[-6000:]
    issued = next(e for e in _events(lab, sc.name) if e["event"] == "issued")
    assert issued["key_id"] == role_a
    data, meta = more.db_kv_read(lab, sc.name)
    assert data["key_id"] == role_b and data["password"] == new_pw
    assert meta["custom_metadata"]["rotation_phase"] == "rolled_back"
    assert not more.role_can_login(pg, role_a) and more.can_log_in(pg, role_b, new_pw)
    for host in lab.hosts:
        assert _env_lines(host) == ["LOG_LEVEL=info", "DB_PASSWORD=" + new_pw, "DB_USER=" + role_b]
        assert more.http_status(_health(host)) == 200
    planted = _kv_passwords(lab, sc.name)
    assert {old_pw, new_pw} < planted  # and role_a's password of the second, rolled-back rotation
    _assert_no_secret(outputs + [proc.stdout, proc.stderr, (lab.workdir / "rotation-audit.jsonl").read_text()],
                      pg.admin_password, *planted)
